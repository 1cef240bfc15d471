/**
 * Every machine-readable code cpr reports, each with a one-line meaning. `CprError` accepts only an `ErrorCode`
 * and `Reporter.warn` only a `WarningCode`, so the compiler proves that every code raised is listed here.
 * docs/errors.md is generated from these tables (`npm run docs:errors`, scripts/gen-error-docs.ts); a test fails
 * when the page is stale or a code here is used nowhere in src/.
 *
 * Codes are stable: scripts match on them (`--json` prints `{"error":{"code",…}}` and `"warnings":[{"code",…}]`).
 * A meaning says when the code is raised; the error's message, `where` and `hint` say what exactly and how to fix.
 */
export const ERROR_CODES = {
  usage: "The command line is wrong: an unknown option, a missing or extra argument, or a bad option value (exit code 2).",
  internal:
    "cpr caught itself in an inconsistency (git stored something other than what cpr computed, or an unsafe value reached git); please report it.",

  "add.not-locked": "`cpr add` resolved the project, but the resulting lock does not contain the atom it was asked to add.",

  "atom.at-root": "An atom directory is the repository root; an atom must sit in a subdirectory.",
  "atom.missing": "A manifest (atom.toml or ekala.toml) listed in a commit could not be read from the repository.",
  "atom.no-manifest": "The given atom directory has no atom.toml in the commit.",
  "atom.not-found": "The given atom path is not a directory of the commit.",

  "build.canonical-json": "A value cannot be written as canonical JSON (not finite, undefined, or not a JSON type).",
  "build.composer": "The atom's composer is a static atom, whose value is not a function to compose with.",
  "build.fetch": "The atoms locked for a build could not be fetched.",
  "build.invalid": "A build record is not a JSON object or one of its fields is invalid.",
  "build.local-dep": "The lock pins a dependency as local-only (no rev), which a build cannot fetch.",
  "build.lock-set": "atom.lock pins an atom from a set that the atom's [sets] does not list.",
  "build.no-lock": "The published atom has no atom.lock, so it cannot be evaluated.",
  "build.no-manifest": "The atom.toml of an atom to build could not be read.",
  "build.static": "The atom is static ([compose.as] static): there is nothing to build.",

  "diff.no-lock": "`cpr diff` was given REV:PATH, and git has no such file at that revision.",

  "cache.layout": "The cache directory was written with another layout version than this cpr reads.",
  "cache.corrupt": "An object in the local git cache is malformed (a commit without a tree, a tree that does not parse).",
  "cache.missing": "A commit, tree or blob expected in the local git cache is not there.",
  "cache.refs": "The refs that keep fetched objects in the local git cache could not be updated.",
  "cache.unsafe-path": "A cached tree has an entry name that is unsafe to write to disk (`..`, `/`, `.git`…).",
  "cache.write": "Fetched manifests could not be stored in the local git cache.",

  "commit.bad-field": "A field of an atom commit (label, version…) is empty or holds a newline or NUL.",
  "commit.bad-id": "A git object id is not 40 or 64 lowercase hex digits, or ids of different object formats are mixed.",
  "commit.malformed": "A git commit object does not parse.",

  "compression.cap": "Decompressed data would exceed the size cap of the residue scan.",
  "compression.corrupt": "Compressed data (gzip, xz, zstd, deflate) could not be decompressed.",
  "compression.missing": "The xz or zstd program needed to decompress data is not installed.",
  "config.alias": "A URL alias (config [aliases] or CPR_ALIASES) has an invalid name or value.",
  "config.alias-cycle": "URL aliases in the configuration expand into each other in a cycle.",
  "config.invalid": "A configuration value (cpr.toml, config.toml or a CPR_* variable) is invalid.",
  "config.read": "A configuration file exists but cannot be read.",
  "config.syntax": "A configuration file is not valid TOML.",

  "content-address.ended": "Internal: a content-address hasher was used after its digest was taken.",
  "content-address.modulus": "The hash part given for hashing modulo self-references is not a valid store hash part.",
  "digest.missing": "A blob needed to compute a tree digest is missing from the repository.",
  "digest.mode": "A tree entry has a mode the tree digest does not cover.",

  "edit.direct-dep": "A direct git dependency to add names both a ref and a version.",
  "edit.inline-table": "atom.toml writes a table inline, where cpr would need to add a key; write it as a [table].",
  "edit.set-packages": "ekala.toml's [set] packages array is missing or cannot be edited in place.",

  "farm.invalid": "A build-farm message (worker ↔ registry, docs/farm.md) is malformed: a field is missing or of the wrong type.",
  "farm.protocol": "The worker and the registry speak different versions of the worker protocol; run the same cpr release on both.",
  "farm.lease-lost": "The job's lease is no longer the worker's (it expired and the job was claimed again, or the job was cancelled).",
  "farm.eval-mismatch": "Building a job evaluated the atom to another derivation than its evaluation job recorded.",
  "farm.rev-mismatch": "The atom version fetched for a job is not the rev the registry indexed.",
  "farm.policy": "The [registry.builds] configuration or `cpr serve --build` is invalid.",
  "fetch.failed": "`git fetch` into the local cache failed.",
  "fetch.missing": "A fetched atom commit is not in the cache afterwards.",
  "fetch.no-atom": "The set has no published atom with that label.",
  "fetch.no-version": "No published version of the atom satisfies the requirement.",
  "fetch.not-atom": "An atom ref points at a commit that is not that atom version's atom commit.",
  "fetch.not-initialized": "The remote is not an initialized atom set (it has no refs/ekala/init).",
  "fetch.out-clash": "Two atoms of the lock have the same label, so `--out DIR` would put both at DIR/<label>.",
  "fetch.out-exists": "The `--out` destination already exists; `cpr fetch` does not overwrite.",
  "fetch.rev-mismatch": "An atom ref on a mirror is not the rev that was expected (the ref moved, or mirrors disagree).",
  "fetch.root-tag": "refs/ekala/init on the remote is an annotated tag, not a valid set marker.",

  "get.build-failed": "The registry's build farm failed to evaluate or build the version (the end of its log is shown).",
  "get.build-cancelled": "The registry's build farm job for the version was cancelled.",
  "get.ambiguous": "The label names atoms of several sets; a URI must say which.",
  "get.no-atom": "The set has no published atom with that label.",
  "get.no-build": "No registry knows a build of the atom for the system.",
  "get.no-keys": "No trusted key is configured for the registry, so Nix would refuse every path it serves.",
  "get.no-registry": "No registry is configured (--registry, config registry.urls or CPR_REGISTRY).",
  "get.not-found": "No registry knows an atom with that label.",
  "get.not-indexed": "The atom's set is not in the registry's catalogue, so no build of it can be known there.",
  "get.not-initialized": "The remote is not an initialized atom set (it has no refs/ekala/init).",
  "get.out-link": "The out-link path exists and is not a symlink; `cpr get` will not replace it.",
  "get.untrusted": "Nix refused the registry's paths: they are not signed by a trusted key.",

  "git.failed": "A git command failed or answered something other than expected.",
  "git.object-name": "git could not look up or read an object by name.",
  "git.output": "git printed output cpr cannot parse.",
  "git.spawn": "git could not be started (is it installed and on PATH?).",

  "graft.damaged": "A zip member of a grafted path no longer matches its CRC-32 after the rewrite (override: --force).",
  "graft.incompatible": "The version grafted onto does not satisfy the dependent's requirement (override: --allow-incompatible).",
  "graft.no-build": "The atom to graft, or the version to graft onto, has no recorded build for the system.",
  "graft.not-found": "No recorded graft matches what was asked for.",
  "graft.not-newer": "The version grafted onto is not newer than the one in the closure (override: --allow-incompatible).",
  "graft.not-runtime":
    "The dependency to replace is not a runtime reference of the closure (a static link or build-time only): rebuild instead.",
  "graft.other-atom": "A graft would replace a dependency by a different atom (override: --allow-incompatible).",
  "graft.refused": "A graft was refused by one or more safety rules, each listed.",
  "graft.request": "A graft request is malformed.",
  "graft.residue": "An old hash part is left in a grafted path after the rewrite, e.g. inside compressed data (override: --force).",
  "graft.source-hash": "An original NAR read for a graft does not have its recorded NarHash.",
  "graft.two-versions": "After the graft one atom would be in the closure in two versions (override: --allow-incompatible).",
  "graft.unknown": "A graft names an atom, version or dependency the registry does not know.",
  "graft.unscanned": "A member of a grafted path could not be scanned for old hash parts (override: --force).",
  "graft.chain": "A path is both replaced and a replacement in one graft.",
  "graft.closure": "A closure member refers to a path that is not in the closure given to the graft plan.",
  "graft.conflict": "One old path is given two replacements.",
  "graft.cycle": "The closure given to the graft plan has a reference cycle.",
  "graft.empty": "A graft was asked for with no replacement.",
  "graft.hash-part": "A string given as a store hash part is not one.",
  "graft.length": "An old and a new store path name differ in length, so the bytes cannot be rewritten in place.",
  "graft.same": "A path is replaced by itself.",
  "graft.self": "The path to graft is itself one of the replaced paths.",
  "hash.invalid": "A hash is not SHA-256 in one of the accepted forms (SRI base64, nix32 or hex).",
  "hash.length": "A SHA-256 digest does not have 32 bytes.",
  "hash.nix32-char": "A nix32 hash contains a character outside Nix's base-32 alphabet.",
  "hash.nix32-length": "A nix32 hash has the wrong length.",
  "hash.nix32-overflow": "A nix32 hash encodes more bits than its digest holds.",

  "id.bare": "`cpr id` was given a path in a bare repository, which has no work tree to read atoms from.",
  "id.invalid": "An AtomId is not canonical base32hex of the right length.",
  "id.not-in-atom": "The path is not inside an atom (no atom.toml above it, below the repository top).",
  "id.outside": "The path is not inside the repository's work tree.",

  "init.local-conflict": "The local refs/ekala/init points at another root than this history's.",
  "init.push": "refs/ekala/init could not be pushed to the remote.",
  "init.root-mismatch": "The remote is already the set of another history (its root differs).",
  "init.root-tag": "refs/ekala/init on the remote is an annotated tag, not a valid set marker.",

  "key.invalid": "A Nix signing or public key is malformed.",
  "key.name": "A Nix key name is empty or contains ':' or whitespace.",

  "label.empty": "A label is empty.",
  "label.invalid-chars": "A label or tag contains characters it may not (see docs/formats.md §2).",
  "label.invalid-start": "A label or tag starts with a character it may not start with.",
  "label.not-normalized": "An AtomId was asked for a label that is empty or not NFKC-normalised.",
  "label.too-long": "A label or tag is longer than the limit in UTF-8 bytes.",

  "lock.compose": 'atom.lock\'s [compose].use is not "atom", "nix" or "static".',
  "lock.dep-type": "A [[deps]] entry of atom.lock has an unknown type.",
  "lock.duplicate": "Two [[deps]] entries of atom.lock lock the same thing.",
  "lock.id-mismatch": "An atom's id in atom.lock is not the AtomId of its set and label.",
  "lock.invalid-hash": "A hash in atom.lock is not a SHA-256 hash in an accepted form.",
  "lock.invalid-hex": "A rev or set root in atom.lock is not 40 or 64 lowercase hex digits.",
  "lock.invalid-rev": "The locker's rev is not 40 or 64 lowercase hex digits.",
  "lock.invalid-version": "A version in atom.lock is not an exact SemVer version.",
  "lock.missing": "A required key is missing from atom.lock.",
  "lock.read": "The lock file cannot be read.",
  "lock.syntax": "atom.lock is not valid TOML.",
  "lock.type": "A value in atom.lock has the wrong type or is empty.",
  "lock.unavailable": "This build of cpr cannot read atom.lock.",
  "lock.unknown-key": "atom.lock has a key the format does not know.",
  "lock.version": "atom.lock has no version, or a lock format version this cpr does not read.",

  "ls.not-initialized": "The remote is not an initialized atom set (it has no refs/ekala/init).",

  "manifest.bad-mirror": 'A mirror in a manifest is neither "::" nor a git URL.',
  "manifest.bad-path": "A path in a manifest is not a relative path inside the atom or set (or is the repository root).",
  "manifest.compose": "atom.toml's [compose] does not hold exactly one valid composition.",
  "manifest.direct-dep": "A direct Nix dependency in atom.toml is malformed.",
  "manifest.duplicate": "A manifest names the same set, atom or dependency twice (after NFKC normalisation).",
  "manifest.invalid-requirement": "A version requirement in atom.toml does not parse.",
  "manifest.invalid-version": "[package].version is not a SemVer version.",
  "manifest.misplaced-key": "A key of atom.toml is in the wrong table.",
  "manifest.missing": "A required table or key is missing from a manifest.",
  "manifest.static-deps": "A static atom ([compose.as] static) declares dependencies.",
  "manifest.syntax": "A manifest is not valid TOML (or cannot be edited as such).",
  "manifest.type": "A value in a manifest has the wrong type or is empty.",
  "manifest.unknown-key": "A manifest has a key the format does not know.",
  "manifest.unknown-set": "A dependency names a set tag that [package.sets] does not define.",

  "nar.changed": "A file changed while it was being archived as a NAR.",
  "nar.export-empty": "A NAR for the export format was empty.",
  "nar.invalid": "Bytes that should be a NAR are not a valid one.",
  "nar.read": "A path cannot be read to archive it as a NAR.",
  "nar.unsupported": "A path to archive is not a regular file, directory or symlink.",

  "narinfo.hash": "A hash field of a narinfo is not a SHA-256 hash.",
  "narinfo.invalid": "A narinfo is malformed (missing, empty or invalid field).",
  "narinfo.store-path": "A store path in a narinfo is invalid.",

  "new.at-root": "`cpr new` was asked to create an atom at the repository root.",
  "new.duplicate-label": "Another atom of the repository already uses the label.",
  "new.exists": "The directory already holds an atom.toml.",
  "new.not-a-directory": "The path exists and is not a directory.",
  "new.outside": "The path is not inside the repository.",
  "new.write": "The new atom's files could not be written (nothing was written).",

  "nix.bad-kind": "A direct dependency has a form cpr does not know.",
  "nix.bad-option": "A direct dependency uses an option that does not apply to its kind.",
  "nix.bad-url": "A direct dependency's URL is invalid or has an unsupported scheme.",
  "nix.cycle": "Store paths reference each other in a cycle.",
  "nix.failed": "A Nix command failed.",
  "nix.fetch": "A direct dependency's source could not be read or fetched.",
  "nix.fetch-http": "Fetching a direct dependency over HTTP failed with an error status.",
  "nix.git-no-ref": "A git direct dependency has no such branch or tag (or no HEAD).",
  "nix.git-no-version": "No tag of a git direct dependency matches its version requirement.",
  "nix.invalid-path": "A path is not a valid path of the Nix store.",
  "nix.missing": "A Nix program is not on PATH.",
  "nix.no-derivation": "An expression evaluated to no derivation.",
  "nix.no-keys": "Substituting from a binary cache needs at least one trusted public key.",
  "nix.output": "Nix printed something cpr cannot use (not JSON, or missing outputs).",
  "nix.spawn": "A Nix program could not be started.",
  "nix.unpack": "An archive of a direct dependency could not be unpacked.",

  "project.not-found": "No atom.toml in the current directory or any directory above it.",

  "process.failed": "A child process exited with a failure status (the default error of the process runner; callers pass their own).",
  "process.spawn": "A child process could not be started (the default error of the process runner; callers pass their own).",
  "outdated.no-lock": "`cpr outdated` runs in an atom without atom.lock: nothing is locked to compare.",
  "outdated.unreachable": "`cpr outdated` could not list any set of the lock.",

  "publish.duplicate-label": "Two atoms of the commit use the same label.",
  "publish.invalid-atoms": "Some atoms of the commit are invalid; none was published.",
  "publish.no-atoms": "The commit has no atoms to publish.",
  "publish.not-an-atom": "The given path is not an atom directory at the published revision.",
  "publish.not-initialized": "The remote is not an initialized atom set (it has no refs/ekala/init); run `cpr init`.",
  "publish.not-listed": "The directory has an atom.toml but is not listed in ekala.toml [set].packages.",
  "publish.outside": "The given path is not inside the repository's work tree.",
  "publish.root-mismatch": "The remote belongs to another set: its root is not this history's root.",
  "publish.root-tag": "refs/ekala/init on the remote is an annotated tag, not a valid set marker.",
  "publish.unknown-label": "No atom with that label at the published revision.",

  "ref.conflict": "A local ref already points at another commit than the one to write.",
  "ref.transaction": "Local refs could not be written.",

  "registry.build-unknown-version": "A build record names an atom version the registry has not indexed.",
  "registry.closed": "The registry is shutting down.",
  "registry.compress": "The registry could not compress an uploaded NAR.",
  "registry.data": "The registry's data directory cannot be used.",
  "registry.db-connect": "The registry cannot connect to PostgreSQL.",
  "registry.db-open": "The registry cannot open its SQLite database.",
  "registry.db-url": "The registry's database URL is unsupported or empty.",
  "registry.http-400": "The registry rejected the request as malformed (HTTP 400).",
  "registry.http-401": "The registry wants a valid write token (HTTP 401).",
  "registry.http-403": "The token may not write this set (HTTP 403).",
  "registry.http-404": "The registry does not know what was asked for, or the URL is not a cpr registry (HTTP 404).",
  "registry.http-405": "The server does not allow the request's method at that URL: not a cpr registry? (HTTP 405).",
  "registry.http-409": "The upload conflicts with what the registry has (another path, missing references or outputs) (HTTP 409).",
  "registry.http-413": "The request or NAR is larger than the registry accepts (HTTP 413).",
  "registry.http-415": "The registry does not accept the request's content type (HTTP 415).",
  "registry.http-422": "The build record names a version that is not published in the set (HTTP 422).",
  "registry.http-429": "The registry or a proxy in front of it is rate-limiting requests (HTTP 429).",
  "registry.http-500": "The registry failed while answering (HTTP 500).",
  "registry.http-502": "The registry could not index the set, or a proxy got no answer from it (HTTP 502).",
  "registry.http-503": "The registry or its database is unavailable (HTTP 503).",
  "registry.http-504": "A proxy in front of the registry timed out (HTTP 504).",
  "registry.http-other": "The registry answered with an HTTP status not listed above (the message names it).",
  "registry.index-reference": "A set's index names an atom version the registry has not recorded.",
  "registry.key": "The registry's signing key cannot be read or created.",
  "registry.listen": "The registry cannot listen on the address, or `--listen` is not HOST:PORT.",
  "registry.malformed": "The registry answered something that is not what the API promises.",
  "registry.schema-too-new": "The registry database was migrated by a newer cpr.",
  "registry.set-root": "A mirror of an indexed set now has another root; the registry refuses it.",
  "registry.set-root-tag": "A set's refs/ekala/init is a tag object, an invalid root marker.",
  "registry.set-uninitialised": "A set to index has no refs/ekala/init (or no longer has it).",
  "registry.set-unreachable": "No mirror of a set to index answered.",
  "registry.s3-credentials": "`cpr serve --store-url s3://…` found no S3 credentials in the AWS environment variables or files.",
  "registry.storage-error": "The registry's object storage (S3) refused a request (the message has its error code).",
  "registry.storage-missing": "A path's narinfo is in the registry but its NAR is missing from the storage.",
  "registry.storage-unreachable": "The registry's object storage (S3) did not answer.",
  "registry.store-url": "`--store-url` (config registry.store-url) is not a usable s3:// URL.",
  "registry.token-exists": "A write token with the same hash is already stored.",
  "registry.token-set": "A write token names no set root, or something that is not a set root.",
  "registry.unknown-set": "The set is not in the registry's database.",
  "registry.unreachable": "The registry cannot be reached over the network.",
  "registry.url": "A registry URL is not an http(s) URL without query or fragment.",

  "remote.auth": "The remote refused the credentials, or needs some and none are available.",
  "remote.none": "No remote was given, and there is no upstream remote or 'origin'.",
  "remote.not-found": "The remote repository does not exist (or is not exported, or not readable to you).",
  "remote.protocol": "The remote's git server does not speak what cpr needs, or sent something invalid.",
  "remote.proxy": "The proxy configuration is not a valid or supported proxy URL.",
  "remote.transport": "The conversation with the remote broke off or went out of step; worth one more try.",
  "remote.unreachable": "The remote cannot be reached (network, host, timeout, or the transport program failed to start).",

  "remove.unknown": "`cpr remove` was given a name that is not a dependency of the atom.",

  "repo.not-found": "The directory is not in a git repository.",
  "repo.object-format": "The repository uses a git object format cpr does not support.",

  "requirement.invalid": "A version requirement does not parse.",

  "run.ambiguous": "`cpr run` found several programs in the atom's bin/ and was not told which one (--bin NAME).",
  "run.no-program": "`cpr run` found no program to run in the atom (no bin/, an empty one, or not the --bin NAME asked for).",

  "resolve.conflict": "No set of versions satisfies every requirement (the message explains why).",
  "resolve.fetch": "Manifests could not be fetched from any mirror.",
  "resolve.from-version": "A direct dependency's from_version names an atom that was not locked.",
  "resolve.local-missing": "A `::` (this repository) dependency is not in the work tree and its set has no URL.",
  "resolve.locked": "With `--locked`, the lock would change.",
  "resolve.locker": "The locker's rev could not be listed or does not belong to the locker set.",
  "resolve.manifest-mismatch": "A published manifest names another label or version than its ref.",
  "resolve.mirrors-down": "No mirror of a set answered.",
  "resolve.no-local": 'A set is "::" (this repository), but the project is not in a git repository with commits.',
  "resolve.no-manifest": "A mirror lacks an atom ref that it listed.",
  "resolve.no-mirror": "A set has no mirror to list its atoms from.",
  "resolve.no-root": "No mirror of a set reported a set root.",
  "resolve.offline": "With `--offline`, something needed is not in the cache.",
  "resolve.rev-mismatch": "Mirrors disagree about an atom version's rev (possible tampering).",
  "resolve.root-mismatch": "Mirrors disagree about a set's root (possible tampering).",

  "rev.not-found": "A revision does not name a commit in the repository.",

  "rewrite.duplicate": "A byte pattern to rewrite is given twice.",
  "rewrite.empty": "A byte rewrite was asked for with no pattern.",
  "rewrite.empty-pattern": "A byte pattern to rewrite is empty.",
  "rewrite.ended": "Internal: bytes were written to a rewriter after its end.",
  "rewrite.length": "A byte pattern and its replacement differ in length.",
  "rewrite.unfinished": "Internal: a rewrite's hash or size was read before the stream ended.",
  "root.invalid": "A set root is not 40 (SHA-1) or 64 (SHA-256) hex digits.",
  "root.none": "No parentless commit is reachable, so the history has no set root.",
  "root.shallow": "The repository is shallow; computing the set root needs the full history.",

  "search.not-initialized": "A set to search is not an initialized atom set (it has no refs/ekala/init).",

  "sign.failed": "The signing program could not sign the atom commit.",
  "sign.key": "The signing key file does not exist.",
  "sign.spawn": "The signing program (ssh-keygen or gpg) could not be started.",

  "store-path.digest": "A digest given for a store path computation has the wrong length for its algorithm.",
  "store-path.fixed-refs": "A fixed-output store path was asked for with references, which it cannot have.",
  "store-path.inner-hash": "The inner hash of a store path computation is not a sha256 in hex.",
  "store-path.name": "A store path name breaks Nix's naming rules.",
  "store-path.store-dir": "A store directory is not an absolute, canonical path.",
  "store-path.text-self": "A text store path was asked to refer to itself.",
  "store-path.type": "A store path type string is empty or holds a newline or NUL.",
  "store.write": "atom.lock and atom.toml could not be written (nothing was changed).",

  "tag.double-dot": "A tag contains '..'.",

  "tree.bad-entry": "A git tree entry has an invalid name, mode or id.",
  "tree.malformed": "A git tree object does not parse.",
  "tree.no-lock": "`cpr tree` found no atom.lock in the project.",

  "update.unknown": "`cpr update` was given labels that are not dependencies of the atom.",

  "upload.header": "An upload to the registry lacks a header or has an invalid one.",

  "uri.alias-cycle": "URL aliases expand into each other in a cycle.",
  "uri.bad-alias": "A URL alias expands to nothing.",
  "uri.bad-scheme": "A URL has a scheme cpr does not support.",
  "uri.bad-url": "A URL is malformed (no host or path, a bad port, control characters…).",
  "uri.no-label": "An atom URI names no atom label.",
  "uri.unknown-alias": "A URI uses an alias that is not defined.",

  "verify.no-version": "No published version of the atom satisfies the requirement.",
  "verify.trust": "The trust file cannot be read or its keys cannot be imported.",

  "version.invalid": "A version is not SemVer.",

  "why.no-lock": "`cpr why` found no atom.lock in the project.",
  "why.not-locked": "The label is not in atom.lock.",
  "yank.already": "`cpr yank` was asked to yank a version that is already yanked on the remote.",
  "yank.invalid": "A yank record (refs/eka/yank/<label>/<version>) is not in the format of docs/formats.md §15.5.",
  "yank.no-version": "`cpr yank` names a version that the remote has not published.",
  "yank.not-initialized": "The remote `cpr yank` was given is not an initialized atom set.",
  "yank.push": "The remote refused the push (or deletion) of a yank record.",
  "yank.reason": "A yank reason is missing, empty, too long, or holds a NUL byte.",

  "zip.invalid": "A file that starts like a zip archive cannot be read as one.",
} as const satisfies Record<string, string>;

/** A code a CprError may carry. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** Warnings: findings that do not fail the command, printed on stderr and listed in `--json` output. */
export const WARNING_CODES = {
  "config.token-in-project": "The project's cpr.toml holds registry.token, which is committed with the set.",
  "config.unknown-key": "A configuration file has a key or table cpr does not know; it is ignored.",

  "diff.origins": "The origin commits of changed atoms could not be listed from a set's mirror; their ranges are left out.",

  "fetch.mirror-failed": "An atom was fetched from one mirror after others failed.",

  "graft.overridden": "A graft safety rule did not hold and a flag (--allow-incompatible, --alias, --force) let the graft go ahead.",
  "graft.no-upgrade":
    "cpr get --graft found no newer dependency version the rules allow, or no graft recorded and no token to make one; the build is installed as it is.",

  "ls.root-tag": "refs/ekala/init on the remote is an annotated tag, which is not a valid set marker.",
  "ls.yanked": "Some listed versions are yanked (refs/eka/yank/<label>/<version>); new locks skip them.",
  "ls.skipped-refs": "Refs under the atom namespaces that are not <label>/<version> were skipped.",

  "outdated.set-failed": '`cpr outdated` could not list one set of the lock; its atoms are shown with "?".',

  "publish.ignored-atom": "An invalid atom that was not asked for is left out of the publication.",

  "registry.set-not-indexed": "`cpr registry token create` names a set the registry has not indexed (yet).",

  "remote.redirect": "An HTTP remote redirected cpr to another URL.",
  "remote.v0-listing": "The remote does not speak git protocol v2, so its whole ref listing was downloaded.",

  "resolve.mirror-down": "A mirror of a set did not answer; resolution goes on with the others.",
  "resolve.mirror-failed": "Manifests could not be fetched from one mirror; the next one is tried.",
  "resolve.yanked": "The lock pins a yanked version; it is kept (the warning says why it was yanked) until `cpr update` moves it.",

  "root.multiple": "The history has several root commits; the oldest is the set root.",

  "search.source-failed": "A registry or set could not be searched; the others still answered.",

  "serve.set-unindexed": "`cpr serve` could not index a set at start-up; it tries again every --refresh seconds (never with --refresh 0).",

  "tree.unknown-deps": "The dependencies of some locked atoms are unknown here (their manifests are not in the cache).",

  "verify.yanked": "The atom version is yanked (withdrawn by its publisher); the warning gives the reason.",

  "verify.bad-lock": "The atom's atom.lock does not parse, so no consumer can evaluate it.",
  "verify.lock-unsatisfied":
    "The atom's lock does not satisfy its atom.toml (or locks an atom local-only), so no consumer can evaluate it.",
  "verify.manifest-unresolvable": "The atom's atom.toml has a [compose] that cannot be resolved, so no consumer can evaluate it.",
  "verify.no-lock": "The atom is composed but has no atom.lock in its tree, so no consumer can evaluate it.",
} as const satisfies Record<string, string>;

/** A code a warning may carry. */
export type WarningCode = keyof typeof WARNING_CODES;
