#!/bin/sh
# Baseline for the publish benchmarks: the git work of `cpr publish --all` (docs/formats.md §7–§9), done with as few git
# processes as possible and plain sh + awk for the rest. It is a yardstick, not a publisher: it handles the generated
# benchmark sets (ASCII labels, single-root history, published commits present locally), nothing more.
#
#   usage: publish.sh REMOTE [REV]        run inside the source repository; REV defaults to HEAD
#
# git processes, whatever the number of atoms:
#   ls-remote (in the background)   the remote's refs/ekala/init and refs/eka/* (what is already published)
#   rev-parse, rev-list             the source commit and the set root (docs/formats.md §4)
#   ls-tree -r -t                   every atom directory (tree id) and its atom.toml (blob id)
#   cat-file --batch                every manifest, and every published atom commit (for the docs/formats.md §9.5 tree check)
#   hash-object -w --stdin-paths    the new pre1 atom commits (docs/formats.md §7), from temporary files
#   update-ref --stdin              the local refs, one transaction
#   push --atomic                   one atomic push of refs/eka/*:refs/eka/*; git sends only the refs the remote
#                                   lacks, i.e. this run's new refs (the local refs/eka/ namespace holds what was
#                                   published from this repository). Explicit per-ref refspecs would be simpler to
#                                   read but make git push's client cost O(refspecs x local refs): minutes at 10,000
#                                   atoms, see bench/README.md.
# Full and incremental publishing are the same script: on an incremental run the listing shows what is already
# published, unchanged atoms are skipped after the tree check, and only the new version is written and pushed.
set -eu
[ $# -ge 1 ] || { echo "usage: publish.sh REMOTE [REV]" >&2; exit 2; }
remote=$1
rev=${2:-HEAD}
LC_ALL=C
export LC_ALL
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cpr-baseline.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

git ls-remote "$remote" refs/ekala/init 'refs/eka/*' >"$tmp/remote" &
lspid=$!

commit=$(git rev-parse --verify --quiet "$rev^{commit}") || { echo "baseline: $rev is not a commit" >&2; exit 1; }
root=$(git rev-list --max-parents=0 "$commit")
case $root in *[!0-9a-f]*) echo "baseline: several root commits, not supported" >&2; exit 1 ;; esac
git ls-tree -r -t --full-tree "$commit" >"$tmp/tree"
wait "$lspid" || { echo "baseline: git ls-remote $remote failed" >&2; exit 1; }

# Atoms (dir, tree, manifest blob) and the cat-file requests: manifests, then the published atom commits.
awk -F '\t' -v root="$root" -v atoms="$tmp/atoms" -v catin="$tmp/catin" '
  FILENAME == ARGV[1] {
    if ($2 == "refs/ekala/init") init = $1
    else if ($2 ~ /^refs\/eka\/atoms\//) print $1 > catin
    next
  }
  {
    split($1, m, " ")
    if (m[2] == "tree") { tree[$2] = m[3]; next }
    if (m[2] != "blob") next
    n = length($2)
    if ($2 == "atom.toml") { print "baseline: atom.toml at the repository root" > "/dev/stderr"; bad = 1; next }
    if (n > 10 && substr($2, n - 9) == "/atom.toml") {
      dir = substr($2, 1, n - 10)
      print m[3] > catin
      printf "%s\t%s\t%s\n", dir, tree[dir], m[3] > atoms
    }
  }
  END {
    if (bad) exit 1
    if (init == "") { print "baseline: the remote is not initialized (no refs/ekala/init)" > "/dev/stderr"; exit 1 }
    if (init != root) { print "baseline: remote root " init " differs from " root > "/dev/stderr"; exit 1 }
  }
' "$tmp/remote" "$tmp/tree"
[ -s "$tmp/atoms" ] || { echo "baseline: no atoms in $commit" >&2; exit 1; }

git cat-file --batch <"$tmp/catin" >"$tmp/catout"

# Parse manifests and published commits; decide publish/skip/refuse (docs/formats.md §9.5); write the new commit bodies (§7).
mkdir "$tmp/c"
awk -F '\t' -v commit="$commit" -v dir="$tmp/c" -v plan="$tmp/plan" -v paths="$tmp/paths" '
  FILENAME == ARGV[1] {
    if ($2 ~ /^refs\/eka\/atoms\//) { split($2, r, "/"); published[r[4] SUBSEP r[5]] = $1 }
    next
  }
  FILENAME == ARGV[2] {
    # cat-file --batch output: "<oid> <type> <size>" then exactly <size> bytes and a newline.
    if (left > 0) {
      left -= length($0) + 1
      if (type == "blob") {
        line = $0
        if (line ~ /^[ \t]*\[/) { sub(/[ \t]*#.*$/, "", line); section = line; next }
        if (section == "[package]" && line ~ /^[ \t]*(label|version)[ \t]*=/) {
          key = line; sub(/^[ \t]*/, "", key); sub(/[ \t]*=.*$/, "", key)
          val = line; sub(/^[^"]*"/, "", val); sub(/".*$/, "", val)
          if (key == "label") label[oid] = val; else version[oid] = val
        }
      } else if (type == "commit" && !(oid in ptree) && $0 ~ /^tree /) ptree[oid] = substr($0, 6)
      next
    }
    split($0, h, " ")
    if (h[2] == "missing") { print "baseline: object " h[1] " is not available locally" > "/dev/stderr"; exit 1 }
    oid = h[1]; type = h[2]; left = h[3] + 1; section = ""
    next
  }
  {
    d = $1; t = $2; mb = $3; l = label[mb]; v = version[mb]
    if (l !~ /^[A-Za-z][A-Za-z0-9_-]*$/) { print "baseline: " d "/atom.toml: bad or missing label \"" l "\"" > "/dev/stderr"; exit 1 }
    if (v !~ /^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/) {
      print "baseline: " d "/atom.toml: bad version \"" v "\"" > "/dev/stderr"; exit 1
    }
    if (l in seen) { print "baseline: label " l " in both " seen[l] " and " d > "/dev/stderr"; exit 1 }
    seen[l] = d
    if ((l SUBSEP v) in published) {
      p = published[l SUBSEP v]
      if (ptree[p] == t) { skipped++; next }
      print "baseline: " l " " v " is already published with other content (" p "): bump the version" > "/dev/stderr"; exit 1
    }
    n++
    f = dir "/" n
    printf "tree %s\nauthor  <> 0 +0000\ncommitter  <> 0 +0000\norigin %s\nformat pre1\n\npublish(%s): %s", t, commit, l, v > f
    close(f)
    print f > paths
    printf "%s\t%s\t%s\n", l, v, mb > plan
  }
  END { printf "%d %d\n", n, skipped > (dir "/../counts") }
' "$tmp/remote" "$tmp/catout" "$tmp/atoms"
read -r new skipped <"$tmp/counts"

if [ "$new" -gt 0 ]; then
  git hash-object -w -t commit --stdin-paths <"$tmp/paths" >"$tmp/oids"
  awk -F '\t' -v commit="$commit" '
    FILENAME == ARGV[1] { oid[FNR] = $1; next }
    {
      a = "refs/eka/atoms/" $1 "/" $2; m = "refs/eka/meta/" $1 "/" $2
      printf "update %s %s\nupdate %s/manifest %s\nupdate %s/origin %s\n", a, oid[FNR], m, $3, m, commit
    }
  ' "$tmp/oids" "$tmp/plan" >"$tmp/updates"
  git update-ref --stdin <"$tmp/updates"
  git push --atomic --porcelain --no-follow-tags "$remote" 'refs/eka/*:refs/eka/*' >"$tmp/push.out" ||
    { cat "$tmp/push.out" >&2; echo "baseline: push failed" >&2; exit 1; }
fi
echo "baseline: $new published, $skipped skipped"
