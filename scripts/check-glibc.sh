#!/usr/bin/env bash
# Fails when an ELF binary needs a versioned glibc symbol newer than GLIBC_MAX (default 2.34, the
# glibc of the Lambda runtime provided.al2023), naming each such symbol and its version.
#
#   scripts/check-glibc.sh BINARY...   check the given binaries
#   scripts/check-glibc.sh --self-test prove that the check can fail
#
# The self-test compiles two small C programs with the machine's cc (glibc 2.36 on Debian 12). The
# one that calls arc4random (added in glibc 2.36) must be rejected, and the one that calls only
# printf must pass.
#
# The versions come from the dynamic symbol table (`objdump -T`), which lists each undefined
# symbol with the version node it was linked against, such as `(GLIBC_2.34) __libc_start_main`.
set -euo pipefail

max=${GLIBC_MAX:-2.34}

# Returns success when version $1 is newer than version $2.
newer_than() {
  [[ "$1" != "$2" && "$(printf '%s\n%s\n' "$1" "$2" | sort -V | tail -n1)" == "$1" ]]
}

# Prints "VERSION SYMBOL" for every versioned glibc symbol of binary $1.
glibc_symbols() {
  objdump -T "$1" |
    sed -n -E 's/.*\(GLIBC_([0-9][0-9.]*)\)[[:space:]]+([^[:space:]]+).*/\1 \2/p' |
    sort -u
}

check_binary() {
  local binary=$1 failed=0 version symbol count=0
  if [[ ! -f "$binary" ]]; then
    echo "check-glibc: $binary not found; build it first" >&2
    return 2
  fi
  while read -r version symbol; do
    count=$((count + 1))
    if newer_than "$version" "$max"; then
      echo "check-glibc: $binary needs $symbol from GLIBC_$version, newer than GLIBC_$max" >&2
      failed=1
    fi
  done < <(glibc_symbols "$binary")
  if [[ $failed -eq 0 ]]; then
    echo "check-glibc: $binary needs nothing newer than GLIBC_$max ($count versioned glibc symbols)"
  fi
  return $failed
}

self_test() {
  local dir
  dir=$(mktemp -d)
  trap 'rm -rf "$dir"' RETURN
  printf '#include <stdio.h>\n#include <stdlib.h>\nint main(void) { printf("%%u\\n", arc4random()); return 0; }\n' >"$dir/new.c"
  printf '#include <stdio.h>\nint main(void) { printf("ok\\n"); return 0; }\n' >"$dir/old.c"
  cc -o "$dir/new" "$dir/new.c"
  cc -o "$dir/old" "$dir/old.c"

  local output
  if output=$(check_binary "$dir/new" 2>&1); then
    echo "check-glibc self-test: a binary calling arc4random passed; the check cannot fail" >&2
    echo "$output" >&2
    return 1
  fi
  if [[ "$output" != *"arc4random from GLIBC_2.36"* ]]; then
    echo "check-glibc self-test: the rejection does not name arc4random and GLIBC_2.36:" >&2
    echo "$output" >&2
    return 1
  fi
  if ! output=$(check_binary "$dir/old" 2>&1); then
    echo "check-glibc self-test: a binary calling only printf was rejected:" >&2
    echo "$output" >&2
    return 1
  fi
  echo "check-glibc self-test: passed (arc4random@GLIBC_2.36 rejected, printf accepted)"
}

if [[ $# -eq 0 ]]; then
  echo "usage: scripts/check-glibc.sh BINARY... | --self-test" >&2
  exit 2
fi
if [[ "$1" == "--self-test" ]]; then
  self_test
  exit
fi

status=0
for binary in "$@"; do
  check_binary "$binary" || status=1
done
exit $status
