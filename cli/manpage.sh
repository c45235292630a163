#!/usr/bin/env bash
# cli/manpage.sh TICKCORE: write the man page tickcore(1) on stdout from the binary's own help
# texts (`tickcore help` and `tickcore CMD --help` for each command it lists), so the page says
# exactly what the binary says. Each text goes in as it is printed (no-fill), with roff's special
# characters escaped; the NAME line and the section headings are added here.
set -euo pipefail
bin=$1
esc() { sed -e 's/\\/\\e/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"; }
version=$("$bin" version | awk '{print $2}')
cmds=$("$bin" help | awk '/^commands:/ {on = 1; next} on && /^  [a-z]/ {print $1} /^$/ && on {on = 0}' |
    grep -vx -e help -e version)
printf '.TH TICKCORE 1 "" "tickcore %s" "User Commands"\n' "$version"
printf '.SH NAME\ntickcore \\- market-data analytics engine: ITCH 5.0 and CSV replay, order books, bars, rolling correlation\n'
printf '.SH SYNOPSIS\n.B tickcore\n.I command\n[options]\n'
printf '.SH DESCRIPTION\n.nf\n'
"$bin" help | esc
printf '.fi\n'
for c in $cmds; do
    printf '.SH "TICKCORE %s"\n.nf\n' "$(echo "$c" | tr a-z A-Z)"
    "$bin" "$c" --help | esc
    printf '.fi\n'
done
printf '.SH FILES\n.TP\n.I share/tickcore/tickcore.ini\nevery setting with its default and its comment (read with --config)\n'
printf '.SH SEE ALSO\nThe C API: include/tickcore/tickcore.h (pkg-config tickcore); the Python package: python/.\n'
