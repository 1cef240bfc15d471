# The graft benchmark's packages (bench/graft.ts): Y in a given version, and X built against it.
{ yVersion, funcs, mib }:
let
  system = builtins.currentSystem;
  drv = name: script: derivation {
    inherit name system funcs mib;
    builder = "/bin/sh";
    args = [ "-c" script ];
    PATH = "/usr/local/bin:/usr/bin:/bin";
  };
  # A member: a program compiled from a generated C file that names the paths given, and data with them inside.
  member = name: share: paths: ''
    set -e
    mkdir -p $out/bin $out/share
    awk -v n=$funcs -v tag=${name} -v paths="${paths} $out" 'BEGIN {
      print "#include <stdio.h>";
      np = split(paths, p, " ");
      for (j = 1; j <= np; j++) printf "static const char *path%d = \"%s\";\n", j, p[j];
      for (i = 0; i < n; i++) {
        printf "long f%d(long x) { long s = %d; for (long i = 0; i < x; i++) { s += (i * %d) ^ (s >> 3); if (s %% %d == 0) s -= i * %d; else s ^= (s << 1) + %d; } return s; }\n", i, i, i % 13 + 1, i % 7 + 2, i % 5 + 1, i;
      }
      print "int main(int argc, char **argv) { long t = 0;";
      for (i = 0; i < n; i++) printf "  t += f%d(argc + %d);\n", i, i % 17;
      for (j = 1; j <= np; j++) printf "  puts(path%d);\n", j;
      printf "  printf(\"%s %%ld\\n\", t); return 0; }\n", tag;
    }' > prog.c
    gcc -O2 -Wl,--build-id=none -o $out/bin/${name} prog.c
    i=0
    while [ $i -lt $((mib * ${share} / 10)) ]; do
      head -c 1048000 /dev/zero | openssl enc -aes-128-ctr -nosalt -K 000102030405060708090a0b0c0d0e0f -iv $(printf '%032x' $i)
      for p in ${paths} $out; do printf '%s/share/data\n' "$p"; done
      i=$((i + 1))
    done > $out/share/data
  '';
  y = drv "y-${yVersion}" ''
    mkdir -p $out/lib
    printf 'y_version() { echo ${yVersion}; }\n' > $out/lib/y.sh
  '';
  core = drv "x-core-1.0" (member "x-core" "16" "${y}");
  plugins = drv "x-plugins-1.0" (member "x-plugins" "14" "${core}");
  data = drv "x-data-1.0" (member "x-data" "8" "");
  x = drv "x-1.0" ((member "x" "10" "${core} ${plugins} ${data} ${y}") + ''
    printf '#!/bin/sh\n. ${y}/lib/y.sh\necho "x 1.0 with y $(y_version), from %s"\n' "$out" > $out/bin/x-run
    chmod +x $out/bin/x-run
  '');
in { inherit y x; }
