#!/usr/bin/env bash
# tests/layout_check.sh [RESULTS]: the folder rules of the README's layout table, checked on the
# sources. Each folder may include only the folders listed for it below (and itself); a
# "dir/internal.h" is included only from its own folder. Prints every offending include with its
# file and line; appends "layout layout_check PASSED FAILED 0" to RESULTS when given.
set -u
cd "$(dirname "$0")/.."
declare -A allowed=(
    [mem]="base"
    [base]=""
    [config]="base"
    [event]="mem"
    [ingest]="net event base mem"
    [net]="base mem"
    [sim]="ingest event base mem"
    [analytics]="event base mem"
    [engine]="analytics sim ingest event config base mem"
    [api]="engine analytics sim ingest event config base mem"
    [feed]="engine net analytics sim ingest event config base mem"
    [server]="engine net analytics sim ingest event config base mem"
    [cli]="feed server engine net analytics sim ingest event config base mem"
)
bad=0 checked=0
for dir in "${!allowed[@]}"; do
    for f in "$dir"/*.[ch]; do
        [ -e "$f" ] || continue
        checked=$((checked + 1))
        while IFS=: read -r line inc; do
            top=${inc%%/*}
            [ "$top" = "$dir" ] && continue
            if [ "${inc#*/}" = internal.h ] || ! [[ " ${allowed[$dir]} " == *" $top "* ]]; then
                echo "layout: $f:$line includes \"$inc\" ($dir/ may include: ${allowed[$dir]:-nothing})"
                bad=$((bad + 1))
            fi
        done < <(grep -no '^#include "[a-z_]*/[a-z_]*\.h"' "$f" | sed -E 's/^([0-9]+):#include "(.*)"/\1:\2/')
    done
done
echo "layout: $checked files checked, $bad includes against the layout"
if [ $# -ge 1 ]; then
    mkdir -p "$(dirname "$1")"
    echo "layout layout_check $((bad == 0 ? 1 : 0)) $((bad == 0 ? 0 : 1)) 0" >> "$1"
fi
[ "$bad" -eq 0 ]
