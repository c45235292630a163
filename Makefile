# tickcore: one non-recursive GNU Makefile.
#
#   make               build build/tickcore, build/libtickcore.{a,so}, build/tickcore.pc,
#                      build/tickcore.1, the tests and benchmarks
#   make install       PREFIX=/usr/local (DESTDIR too): binary, library, header, pkg-config,
#                      man page, default config
#   make python        the Python package (python/) installed with pip for this user
#   make run           install missing packages, build, run the main job, print its report
#   make test          every test: normal build, ASan+UBSan, valgrind memcheck, TSan
#   make bench         build and run the benchmarks in bench/ (figures, not pass/fail)
#   make compare BASE=rev  speed and memory of the working tree against a git revision
#   make deps          install the Debian packages the build needs (only what is missing)
#   make fuzz          libFuzzer targets in tests/fuzz/ (clang), each for FUZZ_SECONDS (30)
#   make format        apply .clang-format (make format-check: fail if anything would change)
#   make SAN=address|undefined|thread|address,undefined   sanitizer build in its own folder
#   make RELEASE=1     optimised build without debug checks in build/release/
#   make CI=1          warnings are errors (set by .ci/run)

SHELL := /bin/bash
.DEFAULT_GOAL := all

CC ?= cc
ifeq ($(origin CC),default)
CC := gcc
endif

# ---- build folder per sanitizer, so objects never mix ----------------------------------------
SAN ?=
san_dir = $(subst $(comma),-,$(subst address,asan,$(subst undefined,ubsan,$(subst thread,tsan,$(1)))))
comma := ,
RELEASE ?=
# Another compiler gets its own folder too (make CC=clang -> build/clang/, build/clang-asan/).
cc_dir := $(if $(filter gcc,$(notdir $(CC))),,$(notdir $(CC)))
ifeq ($(SAN),)
BUILD := build$(if $(cc_dir),/$(cc_dir))$(if $(RELEASE),/release)
SANFLAGS :=
else
BUILD := build/$(if $(cc_dir),$(cc_dir)-)$(call san_dir,$(SAN))
SANFLAGS := -fsanitize=$(SAN) -fno-omit-frame-pointer -fno-sanitize-recover=all
endif

# ---- flags ------------------------------------------------------------------------------------
WARNINGS := -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
            -Wimplicit-fallthrough -Wformat=2 -fno-common
ifdef CI
WARNINGS += -Werror
endif
# Default build: -O2 with assertions and debug checks (pool double-put bitmap, mem_free size
# check, valgrind annotations). RELEASE=1 (build/release/, used by make bench): -DNDEBUG.
OPT ?= -O2 -g$(if $(RELEASE), -DNDEBUG)
CPPFLAGS := -I. -Iinclude -D_GNU_SOURCE -MMD -MP
CFLAGS := -std=c17 $(OPT) $(WARNINGS) $(SANFLAGS) -pthread
# The library's objects also go into libtickcore.so: position-independent, and hidden unless
# declared TICKCORE_API in include/tickcore/tickcore.h (with hidden symbols -fPIC costs nothing
# over the default -fPIE: nothing can be interposed, so calls stay direct). Not the tests': their
# malloc interposers (tests/support/malloc_count.c) must stay visible to the dynamic linker.
LIB_CFLAGS := -fPIC -fvisibility=hidden
LDFLAGS := $(SANFLAGS) -pthread -Wl,--as-needed
LDLIBS := -luring -lisal -llapacke -lopenblas -linih -lxxhash -lmicrohttpd -lpcap -lmimalloc $(shell pkg-config --libs libnats 2>/dev/null || echo -lnats) -lm -lpthread

# ---- sources ----------------------------------------------------------------------------------
# Every module's .c in the folders of DESIGN.md goes into libtickcore.a; cli/main.c is the binary.
# The folders, lowest first: a folder includes only folders before it (tests/layout_check.sh).
LAYERS := base mem config event net ingest sim analytics engine api feed server cli
MAIN_SRCS := cli/main.c
LIB_SRCS := $(filter-out $(MAIN_SRCS),$(sort $(foreach d,$(LAYERS),$(wildcard $(d)/*.c))))

TEST_SUPPORT_SRCS := tests/support/malloc_count.c tests/support/testdata.c tests/support/leftover.c
TEST_SRCS := $(sort $(wildcard tests/unit/test_*.c))
BENCH_SUPPORT_SRCS := bench/bench_util.c
BENCH_SRCS := $(sort $(wildcard bench/bench_*.c))
BENCH_SRCS := $(filter-out $(BENCH_SUPPORT_SRCS),$(BENCH_SRCS))

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
LIB := $(BUILD)/libtickcore.a
SO := $(BUILD)/libtickcore.so
SONAME := libtickcore.so.1
PC := $(BUILD)/tickcore.pc
MAN := $(BUILD)/tickcore.1
BIN := $(BUILD)/tickcore
TESTS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(TEST_SRCS))
API_TEST := $(BUILD)/tests/test_api
BENCHES := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRCS))
# Bench tools that bench programs and scripts start, not run by make bench themselves (a server).
BENCH_TOOLS := $(BUILD)/bench/http_control

# The process-wide malloc counter sees mimalloc calls through --wrap (see malloc_count.c).
MI_WRAP := -Wl,--wrap=mi_malloc,--wrap=mi_zalloc,--wrap=mi_calloc,--wrap=mi_realloc \
           -Wl,--wrap=mi_malloc_aligned,--wrap=mi_zalloc_aligned,--wrap=mi_free

# ---- targets ----------------------------------------------------------------------------------
.PHONY: all lib tests bench-bin run test test-cluster bench compare fuzz deps format format-check clean soak install python \
        profile-heaptrack profile-massif profile-memcheck profile-perf profile-callgrind
all: $(BIN) $(LIB) $(SO) $(PC) $(MAN) $(TESTS) $(BENCHES) $(BENCH_TOOLS)
lib: $(LIB) $(SO)
tests: $(TESTS)
bench-bin: $(BENCHES) $(BENCH_TOOLS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(call obj,$(LIB_SRCS)): CFLAGS += $(LIB_CFLAGS)
$(LIB): $(call obj,$(LIB_SRCS))
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

# The live page's files (server/web/) embedded as C arrays: xxd -i (Debian xxd) at build time.
WEB_ASSETS := server/web/index.html server/web/app.js server/web/app.css
$(BUILD)/gen/web_assets.h: $(WEB_ASSETS)
	@mkdir -p $(@D)
	@{ echo '/* generated from server/web/ by the Makefile (xxd -i); do not edit */'; \
	  for f in $^; do n=$$(basename $$f | tr 'a-z.' 'A-Z_'); \
	    echo "static const unsigned char WEB_$$n[] = {"; xxd -i < $$f; echo '};'; done; } > $@.tmp
	@mv $@.tmp $@
$(BUILD)/obj/server/web.o: $(BUILD)/gen/web_assets.h
$(BUILD)/obj/server/web.o: CPPFLAGS += -I$(BUILD)/gen

$(BIN): $(call obj,$(MAIN_SRCS)) $(LIB)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

# The library: the API object and what it needs from the archive; only the public API exported.
$(SO): $(BUILD)/obj/api/tickcore.o $(LIB) api/tickcore.map
	$(CC) -shared $(LDFLAGS) -Wl,-soname,$(SONAME) -Wl,--version-script=api/tickcore.map \
	    -Wl,--no-undefined $(BUILD)/obj/api/tickcore.o $(LIB) $(LDLIBS) -o $@
	ln -sf libtickcore.so $(BUILD)/$(SONAME)

# test_api sees only the public header and links the shared library, as a user's program does.
$(API_TEST): $(BUILD)/obj/tests/unit/test_api.o $(SO)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $< -L$(BUILD) -ltickcore -Wl,-rpath,'$$ORIGIN/..' -lcmocka -lm -o $@

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(call obj,$(TEST_SUPPORT_SRCS)) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $(MI_WRAP) $^ $(LDLIBS) -lcmocka -o $@

$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(call obj,$(BENCH_SUPPORT_SRCS)) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

# ---- install ----------------------------------------------------------------------------------
PREFIX ?= /usr/local
DESTDIR ?=
LIBDIR := $(PREFIX)/lib
LIB_PRIVATE := $(filter-out -lm -lpthread,$(LDLIBS)) -lm -lpthread
$(PC): Makefile
	@mkdir -p $(@D)
	printf '%s\n' 'prefix=$(PREFIX)' 'libdir=$${prefix}/lib' 'includedir=$${prefix}/include' '' \
	    'Name: tickcore' 'Description: market-data analytics engine (ITCH 5.0, books, bars, correlation)' \
	    'Version: 1.0.0' 'Libs: -L$${libdir} -ltickcore' 'Libs.private: $(LIB_PRIVATE)' \
	    'Cflags: -I$${includedir}' > $@

# The man page is the commands' own --help texts (cli/manpage.sh), so it cannot drift from them.
$(MAN): $(BIN) cli/manpage.sh
	cli/manpage.sh $(BIN) > $@.tmp && mv $@.tmp $@

install: $(BIN) $(LIB) $(SO) $(PC) $(MAN)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(LIBDIR)/pkgconfig \
	    $(DESTDIR)$(PREFIX)/include/tickcore $(DESTDIR)$(PREFIX)/share/man/man1 \
	    $(DESTDIR)$(PREFIX)/share/tickcore
	install -m 755 $(BIN) $(DESTDIR)$(PREFIX)/bin/tickcore
	install -m 644 $(LIB) $(DESTDIR)$(LIBDIR)/libtickcore.a
	install -m 755 $(SO) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libtickcore.so
	install -m 644 include/tickcore/tickcore.h $(DESTDIR)$(PREFIX)/include/tickcore/tickcore.h
	sed 's|^prefix=.*|prefix=$(PREFIX)|' $(PC) > $(DESTDIR)$(LIBDIR)/pkgconfig/tickcore.pc
	install -m 644 $(MAN) $(DESTDIR)$(PREFIX)/share/man/man1/tickcore.1
	install -m 644 config/tickcore.ini $(DESTDIR)$(PREFIX)/share/tickcore/tickcore.ini

# The Python package over build/libtickcore.so (it also works from the checkout as it is:
# PYTHONPATH=python). pip installs it for this user; the library is found next to the package
# (copied in), through TICKCORE_LIB, or as an installed libtickcore.so.1.
python: $(SO)
	cp $(SO) python/tickcore/libtickcore.so
	/usr/bin/python3 -m pip install --user --break-system-packages --no-build-isolation \
	    --no-deps ./python
	rm -rf python/tickcore/libtickcore.so python/tickcore.egg-info python/build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
.SECONDARY: # keep objects that only tests and benchmarks use: no rebuild on the next make

# ---- packages ---------------------------------------------------------------------------------
DEB_PACKAGES := gcc make pkg-config liburing-dev libmimalloc-dev libopenblas-dev liblapacke-dev \
                libcmocka-dev libisal-dev libmicrohttpd-dev libinih-dev libxxhash-dev libpcap-dev \
                gnuplot-nox graphviz xxd chromium valgrind heaptrack clang-format clang \
                libclang-rt-14-dev gzip python3-pandas python3-numpy python3-cffi linux-perf \
                prometheus curl nats-server libnats-dev
deps:
	@missing=$$(for p in $(DEB_PACKAGES); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	  done | tr '\n' ' '); \
	if [ -z "$$missing" ]; then exit 0; fi; \
	echo "deps: missing Debian packages: $$missing"; \
	cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing"; \
	if [ "$$(id -u)" = 0 ]; then echo "deps: $$cmd"; eval "$$cmd"; \
	else echo "deps: not root; run as root:"; echo "  sudo sh -c '$$cmd'"; exit 1; fi

# ---- the two commands of the README -----------------------------------------------------------
# make run: a demo trading day (10^7 ITCH messages, 500 symbols in 10 sectors, with its true
# correlation next to it) is generated once into build/demo/, then replayed with the full report;
# the pictures (heatmap, MST, PCA, latency, stages, memory) land in build/demo/ as PNGs.
DEMO := build/demo/day.itch
DEMO_MESSAGES ?= 10M
run: deps
	@$(MAKE) --no-print-directory $(JOBS) $(BIN)
	@if [ ! -f $(DEMO) ]; then mkdir -p $(dir $(DEMO)) && \
	    $(BIN) gen --messages $(DEMO_MESSAGES) --symbols 500 --sectors 10 --seed 1 --out $(DEMO); fi
	$(BIN) replay --strict --corr-out build/demo/corr.csv --mst-out build/demo/mst.csv \
	    --clusters-out build/demo/clusters.csv --rss-log build/demo/rss.log \
	    --plots build/demo $(DEMO)

# make test: the layout and clang-format checks, then the normal build (unit, integration, memory
# budgets, serve, kill -9 sweep, I/O fault sweep (one random call of each site and kind), a real
# full disk when root), then ASan+UBSan
# (unit tests, and the attack suite once against the sanitized server), then valgrind memcheck of
# the normal unit tests and, beside it, the NATS cluster stages (tests/cluster_stage.sh: its own
# nats-server -js on loopback, 44-48 s; valgrind runs one process on one core, so the cluster's
# minute is hidden in its time instead of added to a CI of ~19.5 min; its output is printed after
# valgrind's), then TSan for the threaded tests.
# Each stage appends to build/test-results; the last line printed is "N passed, N failed", and
# the exit status is non-zero if anything failed.
TSAN_TESTS := test_ring test_mem test_pipeline test_snapshot test_http test_reader test_server
JOBS := -j$(shell nproc 2>/dev/null || echo 2)
VALGRIND := valgrind --quiet --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect
test:
	@rm -f build/test-results
	@tests/layout_check.sh build/test-results
	@tests/format_check.sh build/test-results
	@$(MAKE) --no-print-directory $(JOBS) tests $(BIN) $(SO)
	@tests/readme_check.sh build/test-results $(BIN)
	@tests/run.sh normal build/test-results "" $(TESTS)
	@tests/integration.sh build/test-results $(BIN)
	@tests/budgets/run.sh --results build/test-results --bin $(BIN)
	@tests/serve_test.py build/test-results $(BIN)
	@tests/kill_sweep.py build/test-results $(BIN) 3
	@tests/fault_sweep.py build/test-results $(BIN) 1
	@tests/full_disk.py build/test-results $(BIN)
	@tests/plots_test.py build/test-results $(BIN)
	@tests/web_test.py build/test-results $(BIN)
	@tests/python/test_tickcore.py build/test-results $(BIN)
	@$(MAKE) --no-print-directory $(JOBS) SAN=address,undefined tests build/asan-ubsan/tickcore
	@ASAN_OPTIONS=detect_leaks=1 tests/run.sh asan+ubsan build/test-results "" \
	    $(patsubst build/%,build/asan-ubsan/%,$(TESTS))
	@tests/asan_attack.py build/test-results build/asan-ubsan/tickcore 200 100 5
	@mkdir -p build/test-logs; tests/cluster_stage.sh build/test-results $(BIN) \
	    > build/test-logs/cluster-stage.log 2>&1 & cluster=$$!; \
	  trap '[ -z "$$cluster" ] || kill -TERM $$cluster 2>/dev/null' EXIT INT TERM; \
	  tests/run.sh valgrind build/test-results "$(VALGRIND)" $(TESTS); \
	  wait $$cluster; cluster=; cat build/test-logs/cluster-stage.log
	@$(MAKE) --no-print-directory $(JOBS) SAN=thread $(addprefix build/tsan/tests/,$(TSAN_TESTS))
	@tests/run.sh tsan build/test-results "" $(addprefix build/tsan/tests/,$(TSAN_TESTS))
	@tests/summary.sh build/test-results

# make test-cluster: the NATS JetStream cluster end to end (each test starts its own nats-server
# -js on a free loopback port): tests/cluster_test.py (publish, shards, kills, a restarted
# nats-server, a stopped shard) and tests/cluster_xs_test.py (the cross-section node's join
# against replay, 4 shards with kills) at 400,000 messages (TICKCORE_CLUSTER_MESSAGES) and every
# section; make test runs them smaller (tests/cluster_stage.sh). The unit tests test_nats, test_pack and
# test_xjoin are in make test.
test-cluster:
	@$(MAKE) --no-print-directory $(JOBS) $(BIN)
	@rm -f build/test-results-cluster
	@tests/cluster_test.py build/test-results-cluster $(BIN)
	@tests/cluster_xs_test.py build/test-results-cluster $(BIN)
	@tests/summary.sh build/test-results-cluster

# Benchmarks run the release build (no debug checks); figures, not pass/fail. OpenBLAS 0.3.21
# does not know this machine's AVX-512 CPU and would pick its AVX2 kernels; where the CPU has
# AVX-512 the benchmarks ask for the SkylakeX kernels (it must be set before the library loads).
BENCH_ENV := $(if $(shell grep -qw avx512f /proc/cpuinfo 2>/dev/null && echo y),OPENBLAS_CORETYPE=SkylakeX)
bench:
	@$(MAKE) --no-print-directory $(JOBS) RELEASE=1 bench-bin build/release/tickcore
	@for b in $(patsubst build/%,build/release/%,$(BENCHES)); do \
	    echo "== $$b $(BENCH_ENV)"; env $(BENCH_ENV) $$b || exit 1; echo; done
	@echo "== bench/soak.sh"; env $(BENCH_ENV) bench/soak.sh build/release/tickcore
	@echo; echo "== bench/peer.sh (pandas/numpy on the same data)"; \
	    env $(BENCH_ENV) bench/peer.sh build/release/tickcore 2e7 500
	@echo; echo "== bench/estimators.sh (correlation estimators against the generator's truth)"; \
	    env $(BENCH_ENV) bench/estimators.sh build/release/tickcore
	@echo; echo "== bench/cluster.sh (NATS JetStream on loopback: 1 feed, 2 and 4 shards, 1 cross-section node)"; \
	    env $(BENCH_ENV) bench/cluster.sh build/release/tickcore 2e6 200 3
	@echo; echo "== bench/cluster_join.sh (the cross-section node's bar-join latency, 2 and 4 shards)"; \
	    env $(BENCH_ENV) bench/cluster_join.sh build/release/tickcore 2e6 200

# make compare BASE=<git rev>: what the working tree costs against BASE, built in a temporary git
# worktree under build/compare/ (RELEASE=1 both): speed (replay, decode-only, bench_book, query
# latency under load; interleaved runs, medians) and the memory scenarios of tests/budgets, in one
# table with the ratio. COMPARE_RUNS=N rounds (default 5). See bench/compare.sh.
compare:
	@if [ -z "$(BASE)" ]; then echo "usage: make compare BASE=<git rev> (e.g. BASE=HEAD~1)"; exit 2; fi
	@env $(BENCH_ENV) bench/compare.sh '$(BASE)'

# The soak alone: one day replayed 10 times in one process, RSS plotted to build/soak/soak.png.
soak:
	@$(MAKE) --no-print-directory $(JOBS) RELEASE=1 build/release/tickcore
	bench/soak.sh build/release/tickcore

# Profilers, one command each, on a small generated day; output in build/profile/. Each prints
# the line that matters beside tickcore's own figure (bench/profile.sh says what is compared).
profile-heaptrack profile-massif profile-memcheck profile-perf profile-callgrind: profile-%:
	@$(MAKE) --no-print-directory $(JOBS) $(BIN)
	@bench/profile.sh $* $(BIN)

# Fuzzing: each tests/fuzz/fuzz_X.c is a libFuzzer target built with clang, ASan and UBSan and
# linked against build/fuzz/libtickcore-fuzz.a (the library's sources compiled once with
# -fsanitize=fuzzer-no-link,address,undefined), then run for FUZZ_SECONDS (default 30; FUZZ_TIME
# is the old name) on a corpus in build/fuzz/corpus-X, seeded by tests/fuzz/seeds.py from
# tests/data (ITCH files for the decoders and the journal, with checksum sidecars; a login and
# sequenced messages for the SoupBinTCP session; requests for HTTP). A crash or an invariant
# broken leaves its input in build/fuzz/ and fails the target. make fuzz-build only builds. Not a
# stage of make test: the build alone takes 21 s, and a few seconds per target on top would pass
# the 30 s such a stage may take.
FUZZ_TIME ?= 30
FUZZ_SECONDS ?= $(FUZZ_TIME)
FUZZ_SRCS := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS := $(patsubst tests/fuzz/%.c,build/fuzz/%,$(FUZZ_SRCS))
FUZZ_LIB_SRCS := $(filter-out server/web.c server/server.c cli/%,$(LIB_SRCS))
FUZZ_OBJS := $(patsubst %.c,build/fuzz/obj/%.o,$(FUZZ_LIB_SRCS))
FUZZ_LIB := build/fuzz/libtickcore-fuzz.a
FUZZ_SAN := address,undefined -fno-sanitize-recover=all
FUZZ_CFLAGS := -std=c17 -g -O1 -I. -Iinclude -D_GNU_SOURCE -pthread -MMD -MP
build/fuzz/obj/%.o: %.c
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link,$(FUZZ_SAN) -c $< -o $@
$(FUZZ_LIB): $(FUZZ_OBJS)
	rm -f $@ && ar rcs $@ $^
-include $(FUZZ_OBJS:.o=.d)
build/fuzz/%: tests/fuzz/%.c $(FUZZ_LIB)
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer,$(FUZZ_SAN) $< $(FUZZ_LIB) $(LDLIBS) -o $@
.PHONY: fuzz-build
fuzz-build:
	@$(MAKE) --no-print-directory $(JOBS) $(FUZZ_BINS)
fuzz: deps fuzz-build
	@tests/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_BINS)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build
