# libbitnet - build with plain `make`; see README.md.
#
#   make            release build (-O3): build/libbitnet.a, build/libbitnet.so, build/<tools>
#   make test       builds and runs the fast test tier (build/run_tests: each test
#                   forked with a timeout, in parallel; < 30 s on 2 cores)
#   make test-all   both tiers: also the end-to-end tests (server, soak, mlock, bench)
#   make asan       ASan + UBSan build of the tests, then runs them (build-asan/)
#   make static     fully static build/infer (and the other tools)
#   make install    [PREFIX=/usr/local] [DESTDIR=]: library (.a, .so.X.Y.Z with SONAME),
#                   bitnet.h, bitnet.pc, the tools, docs; make uninstall removes them
#   make clean
#   make AVX=1      accepted for compatibility with the brief: kernels are chosen
#                   at run time from the CPU, so every build already has AVX2/AVX-512.
#
# Cross build for ARM64: make CC=aarch64-linux-gnu-gcc BUILD=build-arm64

CC      ?= cc
AR      ?= ar
BUILD   ?= build
OPT     ?= -O3
CSTD    := -std=c11 -D_GNU_SOURCE
WARN    := -Wall -Wextra -Wno-unused-parameter -Wshadow -Wstrict-prototypes
CFLAGS  ?=
# -fvisibility=hidden: libbitnet.so exports only what bitnet.h marks BITNET_API
CFLAGS  += $(CSTD) $(OPT) $(WARN) -fPIC -fvisibility=hidden -Iinclude -Isrc -pthread
LDFLAGS ?=
LDLIBS  += -lm -pthread

# Which ISA-specific kernel files to compile for the target machine.
TARGET_ARCH := $(shell $(CC) -dumpmachine)
ifneq (,$(findstring x86_64,$(TARGET_ARCH)))
  X86 := 1
  ISA_SRC := src/kernels/avx2.c src/kernels/avx512.c src/kernels/kv_avx2.c
else ifneq (,$(findstring aarch64,$(TARGET_ARCH)))
  ISA_SRC := src/kernels/neon.c src/kernels/kv_neon.c
else ifneq (,$(findstring arm-linux-gnueabihf,$(TARGET_ARCH)))
  # 32-bit ARM with NEON (armhf): neon.c's ternary kernels, chosen at run time by HWCAP_NEON
  ISA_SRC := src/kernels/neon.c
  NEON32 := 1
  CFLAGS += -DBN_HAVE_NEON32
else ifneq (,$(findstring riscv64,$(TARGET_ARCH)))
  # RVV 1.0 intrinsics: gcc >= 14 has them; else rvv.c is compiled with clang
  # (Debian 12: gcc 12, clang 14). Without either, the scalar table only.
  RVV_PROBE := printf '\043include <riscv_vector.h>\n' |
  ifndef RVV_CC
    RVV_CC := $(shell $(RVV_PROBE) $(CC) -march=rv64gcv -E -x c - >/dev/null 2>&1 && echo '$(CC)' || \
                ($(RVV_PROBE) clang --target=riscv64-linux-gnu -march=rv64gcv -E -x c - >/dev/null 2>&1 && \
                 echo 'clang --target=riscv64-linux-gnu'))
  endif
  ifneq (,$(RVV_CC))
    ISA_SRC := src/kernels/rvv.c src/kernels/kv_rvv.c
    CFLAGS += -DBN_HAVE_RVV
  endif
else
  ISA_SRC :=
endif
# Windows x86-64 (mingw-w64): the C99 printf (%zu, %lld) rather than msvcrt's,
# 64-bit file offsets, and every file opened in binary mode (binmode.o, so
# that "\n" is not written as "\r\n").
ifneq (,$(findstring mingw,$(TARGET_ARCH)))
  WINDOWS := 1
  EXE     := .exe
  CFLAGS  += -D__USE_MINGW_ANSI_STDIO=1 -D_FILE_OFFSET_BITS=64 -D_WIN32_WINNT=0x0A00 -DBITNET_BUILD
  LDLIBS  += $(shell $(CC) -print-file-name=binmode.o) -lws2_32
endif

# libbitnet: src/ by concern (docs/architecture.md). The server is not in it:
# server/ builds libbitnet-server.a (HTTP, OpenAI and llama.cpp APIs, slot scheduler) and build/server.
LIB_SRC   := $(wildcard src/*.c src/formats/*.c src/model/*.c src/tokenizer/*.c src/grammar/*.c) \
             src/kernels/dispatch.c src/kernels/scalar.c src/kernels/pack.c src/kernels/kv_scalar.c src/kernels/quants.c $(ISA_SRC)
LIB_ASM   := src/default_model.S
LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/obj/%.o) $(LIB_ASM:%.S=$(BUILD)/obj/%.o)
SRV_SRC   := server/http.c server/server_api.c server/server_sched.c server/server_native.c server/json_mode.c server/tools.c
SRV_OBJ   := $(SRV_SRC:%.c=$(BUILD)/obj/%.o)
# build/server itself: main.c (connections, life cycle) and endpoints.c (routes, handlers)
SRV_BIN_OBJ := $(BUILD)/obj/server/main.o $(BUILD)/obj/server/endpoints.o $(BUILD)/obj/server/net.o $(BUILD)/obj/server/chat_page.o
TOOL_SRC  := $(wildcard tools/*.c)
ifdef WINDOWS
  # not yet on Windows: server_load, the load generator of the server's tests
  TOOL_SRC := $(filter-out tools/server_load.c,$(TOOL_SRC))
  TOOLS    := $(TOOL_SRC:tools/%.c=$(BUILD)/%.exe) $(BUILD)/server.exe
else
  TOOLS    := $(TOOL_SRC:tools/%.c=$(BUILD)/%) $(BUILD)/server
endif
BENCH_SRC := $(wildcard bench/*.c)
BENCH_OBJ := $(BENCH_SRC:%.c=$(BUILD)/obj/%.o)
TEST_SRC  := $(wildcard tests/*.c)
ifdef WINDOWS
  # the server's harness (fork, signals, server_load) and rlimits: POSIX-only tests (the
  # server itself is checked on Windows by tests/windows/smoke.sh)
  TEST_SRC := $(filter-out tests/test_server.c tests/test_mlock.c,$(TEST_SRC))
endif
TEST_OBJ  := $(TEST_SRC:%.c=$(BUILD)/obj/%.o)
DEPS      := $(LIB_OBJ:.o=.d) $(SRV_OBJ:.o=.d) $(filter-out %chat_page.d,$(SRV_BIN_OBJ:.o=.d)) $(TEST_OBJ:.o=.d) $(BENCH_OBJ:.o=.d) \
             $(TOOL_SRC:tools/%.c=$(BUILD)/obj/tools/%.d)

# Per-ISA flags: only these files are compiled for the extension, and are
# called only after the CPU was checked for it.
$(BUILD)/obj/src/kernels/scalar.o: EXTRA_CFLAGS := -ffp-contract=off
$(BUILD)/obj/src/kernels/avx2.o:   EXTRA_CFLAGS := -mavx2 -mfma -mf16c -mbmi2 -mpopcnt
$(BUILD)/obj/src/kernels/avx512.o: EXTRA_CFLAGS := -mavx2 -mfma -mf16c -mbmi2 -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni -mpopcnt
ifdef NEON32
$(BUILD)/obj/src/kernels/neon.o:   EXTRA_CFLAGS := -mfpu=neon
else
$(BUILD)/obj/src/kernels/neon.o:   EXTRA_CFLAGS := -march=armv8-a
endif
$(BUILD)/obj/src/kernels/kv_avx2.o: EXTRA_CFLAGS := -mavx2 -mfma -mf16c -ffp-contract=off
$(BUILD)/obj/src/kernels/kv_neon.o: EXTRA_CFLAGS := -march=armv8-a -ffp-contract=off
# Tests run the tools of the same build (build/ or build-asan/ ...).
$(TEST_OBJ): EXTRA_CFLAGS := -DBN_BUILD_DIR=\"$(BUILD)\" -Iserver -Ibench
$(SRV_BIN_OBJ): EXTRA_CFLAGS := -Itools
$(BENCH_OBJ) $(BUILD)/obj/tools/bench.o: EXTRA_CFLAGS := -Ibench
ifdef X86
$(BUILD)/obj/bench/b1_avx2.o:   EXTRA_CFLAGS := -mavx2 -mpopcnt
$(BUILD)/obj/bench/tq1_avx2.o:  EXTRA_CFLAGS := -mavx2
$(BUILD)/obj/bench/b1_avx512.o: EXTRA_CFLAGS := -mavx512f -mavx512bw -mavx512vpopcntdq
endif

.PHONY: all test test-all test-deploy test-browser asan static clean fuzz test-arm64 test-arm64-v80 test-riscv64 test-armhf \
	test-windows check-layers install uninstall
# keep tool objects between builds (they are intermediates of a pattern rule)
.SECONDARY:
ifdef WINDOWS
all: $(BUILD)/libbitnet.a $(BUILD)/bitnet.dll $(BUILD)/libbitnet-server.a $(TOOLS)
else
all: $(BUILD)/libbitnet.a $(BUILD)/libbitnet.so $(BUILD)/libbitnet-server.a $(TOOLS)
endif

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(EXTRA_CFLAGS) -MMD -MP -c $< -o $@

# rvv.c, kv_rvv.c: with the compiler that has the RVV intrinsics (see RVV_CC
# above); no contraction of a*b+c, as in scalar.c and kv_scalar.c (same bits)
$(BUILD)/obj/src/kernels/rvv.o $(BUILD)/obj/src/kernels/kv_rvv.o: $(BUILD)/obj/src/kernels/%.o: src/kernels/%.c
	@mkdir -p $(dir $@)
	$(RVV_CC) $(CFLAGS) -march=rv64gcv -ffp-contract=off -MMD -MP -c $< -o $@

# The default model is embedded into the library with .incbin.
$(BUILD)/obj/server/chat_page.o: server/chat_page.S server/chat.html
	@mkdir -p $(dir $@)
	$(CC) -c $< -o $@

$(BUILD)/obj/src/default_model.o: src/default_model.S models/default.gguf
	@mkdir -p $(dir $@)
	$(CC) -c $< -o $@

$(BUILD)/libbitnet.a: $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/libbitnet-server.a: $(SRV_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

# The version lives in include/bitnet.h (BITNET_VERSION); the shared library is
# libbitnet.so.X.Y.Z with SONAME libbitnet.so.X (libbitnet.so.0.Y before 1.0,
# where a minor version may change the ABI) and the two usual links.
VERSION   := $(shell sed -n 's/^\#define BITNET_VERSION "\(.*\)"/\1/p' include/bitnet.h)
SOMAJOR   := $(firstword $(subst ., ,$(VERSION)))
ifeq ($(SOMAJOR),0)
  SOMAJOR := 0.$(word 2,$(subst ., ,$(VERSION)))
endif
# Windows: bitnet.dll (exports the BITNET_API functions only), its import library
# libbitnet.dll.a, and no runtime DLL beyond the system's (libgcc, winpthreads static)
$(BUILD)/bitnet.dll: $(LIB_OBJ)
	$(CC) -shared -static-libgcc $(LDFLAGS) -o $@ $^ -Wl,--out-implib,$(BUILD)/libbitnet.dll.a \
		-Wl,-Bstatic -lpthread -Wl,-Bdynamic $(LDLIBS)

$(BUILD)/libbitnet.so: $(LIB_OBJ)
	$(CC) -shared $(LDFLAGS) -Wl,-soname,libbitnet.so.$(SOMAJOR) -o $@.$(VERSION) $^ $(LDLIBS)
	ln -sf libbitnet.so.$(VERSION) $@.$(SOMAJOR)
	ln -sf libbitnet.so.$(VERSION) $@

# ---- install (PREFIX, DESTDIR as usual) ------------------------------------------
PREFIX     ?= /usr/local
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
BINDIR     ?= $(PREFIX)/bin
DOCDIR     ?= $(PREFIX)/share/doc/bitnet
INSTALL_TOOLS := infer bench convert prune perplexity tokenize logits embed server
$(BUILD)/bitnet.pc: include/bitnet.h Makefile
	@mkdir -p $(BUILD)
	printf '%s\n' 'prefix=$(PREFIX)' 'libdir=$(LIBDIR)' 'includedir=$(INCLUDEDIR)' '' \
	  'Name: bitnet' 'Description: CPU inference for ternary (BitNet b1.58) language models' \
	  'Version: $(VERSION)' 'Libs: -L$${libdir} -lbitnet' 'Libs.private: -lm -pthread' \
	  'Cflags: -I$${includedir}' > $@

install: all $(BUILD)/bitnet.pc
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(DOCDIR)
	install -m 644 $(BUILD)/libbitnet.a $(DESTDIR)$(LIBDIR)/
	install -m 755 $(BUILD)/libbitnet.so.$(VERSION) $(DESTDIR)$(LIBDIR)/
	ln -sf libbitnet.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libbitnet.so.$(SOMAJOR)
	ln -sf libbitnet.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libbitnet.so
	install -m 644 include/bitnet.h $(DESTDIR)$(INCLUDEDIR)/
	install -m 644 $(BUILD)/bitnet.pc $(DESTDIR)$(LIBDIR)/pkgconfig/
	install -m 755 $(addprefix $(BUILD)/,$(INSTALL_TOOLS)) $(DESTDIR)$(BINDIR)/
	install -m 644 README.md $(wildcard docs/*.md) $(DESTDIR)$(DOCDIR)/

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libbitnet.a $(DESTDIR)$(LIBDIR)/libbitnet.so $(DESTDIR)$(LIBDIR)/libbitnet.so.$(SOMAJOR) \
	      $(DESTDIR)$(LIBDIR)/libbitnet.so.$(VERSION) $(DESTDIR)$(LIBDIR)/pkgconfig/bitnet.pc \
	      $(DESTDIR)$(INCLUDEDIR)/bitnet.h $(addprefix $(DESTDIR)$(BINDIR)/,$(INSTALL_TOOLS))
	rm -rf $(DESTDIR)$(DOCDIR)

$(BUILD)/%$(EXE): $(BUILD)/obj/tools/%.o $(BUILD)/libbitnet.a
	$(CC) $(LDFLAGS) -o $@ $< $(BUILD)/libbitnet.a $(LDLIBS)

# bench links the micro-benchmarks in bench/
$(BUILD)/bench$(EXE): $(BUILD)/obj/tools/bench.o $(BENCH_OBJ) $(BUILD)/libbitnet.a
	$(CC) $(LDFLAGS) -o $@ $< $(BENCH_OBJ) $(BUILD)/libbitnet.a $(LDLIBS)

$(BUILD)/server$(EXE): $(SRV_BIN_OBJ) $(BUILD)/libbitnet-server.a $(BUILD)/libbitnet.a
	$(CC) $(LDFLAGS) -o $@ $(SRV_BIN_OBJ) $(BUILD)/libbitnet-server.a $(BUILD)/libbitnet.a $(LDLIBS)

$(BUILD)/run_tests$(EXE): $(TEST_OBJ) $(BENCH_OBJ) $(BUILD)/libbitnet-server.a $(BUILD)/libbitnet.a
	$(CC) $(LDFLAGS) -o $@ $(TEST_OBJ) $(BENCH_OBJ) $(BUILD)/libbitnet-server.a $(BUILD)/libbitnet.a $(LDLIBS)

TEST_ARGS ?=
test: all $(BUILD)/run_tests
	./$(BUILD)/run_tests $(TEST_ARGS)

test-all: all $(BUILD)/run_tests
	./$(BUILD)/run_tests --all $(TEST_ARGS)

# the chat page (GET /) in headless Chromium: a message in, a streamed answer out, a screenshot
test-browser: all
	python3 tests/browser/chat_page.py --build $(BUILD)

# 3 server replicas behind nginx: rolling restart and a crash under load (deploy/README.md)
test-deploy: all
	BUILD=$(BUILD) bash deploy/test.sh

# Layering rules of docs/architecture.md: no call or include cycles among
# src/ files, no server code in libbitnet.a, tools include only public headers.
check-layers: all
	python3 .ci/check-layers.py $(BUILD)

# LeakSanitizer on (also in every tool the tests run): an error path that leaks fails its test
asan:
	ASAN_OPTIONS=detect_leaks=1:$(ASAN_OPTIONS) $(MAKE) BUILD=build-asan OPT="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined" \
		LDFLAGS="-fsanitize=address,undefined" TEST_ARGS="$(TEST_ARGS)" test

static:
	$(MAKE) BUILD=build/static LDFLAGS="-static" $(TOOL_SRC:tools/%.c=build/static/%) build/static/server
	cp build/static/infer build/infer-static
	cp build/static/infer build/infer

# Other targets, cross-built and run under qemu-user (Debian: qemu-user and the
# gcc-<triple> cross compilers). test-arm64 runs the fast tier on a CPU with
# dotprod (qemu's default, both NEON tables); the others run PLATFORM_TESTS:
# every kernel table against the scalar reference, the byte-exact reference
# texts (the embedded model and ak42 1M), tokenizers and the GGUF reader.
#   test-arm64-v80  ARMv8.0 without dotprod (Cortex-A72, Raspberry Pi 4): the
#                   plain NEON table is chosen at run time
#   test-riscv64    RISC-V 64: without V (the scalar table), then with RVV 1.0 at
#                   VLEN 128 (every platform test; the rvv table is chosen) and
#                   256 and 512 (the kernels against the scalar reference)
#   test-armhf      32-bit ARM, hard float, with NEON: the neon table (neon.c's ternary
#                   kernels) is chosen at run time
PLATFORM_TESTS ?= kernels kv_cache_every infer_default infer_ak42 reference tokenizer gguf_ chat
# ARM64 (NEON) build, run under qemu-user: needs gcc-aarch64-linux-gnu and qemu-user.
test-arm64:
	$(MAKE) CC=aarch64-linux-gnu-gcc AR=aarch64-linux-gnu-ar BUILD=build-arm64 LDFLAGS=-static \
		build-arm64/run_tests $(TOOL_SRC:tools/%.c=build-arm64/%) build-arm64/server
	BITNET_EXEC_PREFIX="qemu-aarch64" qemu-aarch64 build-arm64/run_tests

test-arm64-v80:
	$(MAKE) CC=aarch64-linux-gnu-gcc AR=aarch64-linux-gnu-ar BUILD=build-arm64 LDFLAGS=-static \
		build-arm64/run_tests $(TOOL_SRC:tools/%.c=build-arm64/%)
	QEMU_CPU=cortex-a72 qemu-aarch64 build-arm64/infer -n 1 -v -p x 2>&1 | grep -q 'isa neon |' || \
		{ echo "test-arm64-v80: the NEON table without dotprod was not chosen on a Cortex-A72"; exit 1; }
	QEMU_CPU=cortex-a72 BITNET_EXEC_PREFIX="qemu-aarch64" qemu-aarch64 build-arm64/run_tests -j 2 $(PLATFORM_TESTS)

test-riscv64:
	$(MAKE) CC=riscv64-linux-gnu-gcc AR=riscv64-linux-gnu-ar BUILD=build-riscv64 LDFLAGS=-static \
		build-riscv64/run_tests $(TOOL_SRC:tools/%.c=build-riscv64/%)
	BITNET_EXEC_PREFIX="qemu-riscv64" qemu-riscv64 build-riscv64/run_tests -j 2 $(PLATFORM_TESTS)
	@if test -f build-riscv64/obj/src/kernels/rvv.o; then \
	  QEMU_CPU=rv64,v=true,vext_spec=v1.0,vlen=128 qemu-riscv64 build-riscv64/infer -n 1 -v -p x 2>&1 | grep -q 'isa rvv |' || \
	    { echo "test-riscv64: the rvv table was not chosen on a CPU with V"; exit 1; }; \
	  QEMU_CPU=rv64,v=true,vext_spec=v1.0,vlen=128 BITNET_EXEC_PREFIX="qemu-riscv64" qemu-riscv64 build-riscv64/run_tests -j 2 $(PLATFORM_TESTS) && \
	  QEMU_CPU=rv64,v=true,vext_spec=v1.0,vlen=256 qemu-riscv64 build-riscv64/run_tests -j 2 kernels kv_cache_every && \
	  QEMU_CPU=rv64,v=true,vext_spec=v1.0,vlen=512 qemu-riscv64 build-riscv64/run_tests -j 2 kernels kv_cache_every; \
	else echo "test-riscv64: no compiler with the RVV intrinsics (gcc >= 14 or clang): RVV not tested"; fi

# Windows x86-64: cross-built with mingw-w64 (Debian: gcc-mingw-w64-x86-64) and run
# under Wine (Debian: wine64): the whole fast tier, less the test files that
# need fork, rlimits or a POSIX server harness (see TEST_SRC; WINDOWS_TESTS: a
# filter), then server.exe on Winsock answered through curl, and a program that
# links bitnet.dll (tests/windows/smoke.sh).
WINDOWS_TESTS ?=
WIN := $(MAKE) CC=x86_64-w64-mingw32-gcc AR=x86_64-w64-mingw32-ar BUILD=build-win64 LDFLAGS=-static
# quiet, and no Mono/Gecko installer when Wine makes its prefix on a fresh machine
WINE_ENV := WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
WINE := $(WINE_ENV) wine
test-windows:
	$(WIN) build-win64/run_tests.exe $(filter-out %server_load.exe,$(TOOL_SRC:tools/%.c=build-win64/%.exe)) \
		build-win64/server.exe build-win64/dll_smoke.exe
	$(WINE) build-win64/run_tests.exe -j 2 $(WINDOWS_TESTS)
	$(WINE_ENV) wineserver -w # the tests' Wine session ends before the smoke test's starts
	$(WINE_ENV) bash tests/windows/smoke.sh build-win64

# a program that links bitnet.dll through its import library, as Windows programs do
$(BUILD)/dll_smoke.exe: tests/windows/dll_smoke.c $(BUILD)/bitnet.dll
	$(CC) -std=c11 -O2 -Wall -Iinclude -o $@ $< $(BUILD)/libbitnet.dll.a

test-armhf:
	$(MAKE) CC=arm-linux-gnueabihf-gcc AR=arm-linux-gnueabihf-ar BUILD=build-armhf LDFLAGS=-static \
		build-armhf/run_tests $(TOOL_SRC:tools/%.c=build-armhf/%)
	qemu-arm build-armhf/infer -n 1 -v -p x 2>&1 | grep -q 'isa neon |' || \
		{ echo "test-armhf: the neon table was not chosen on a CPU with NEON"; exit 1; }
	BITNET_EXEC_PREFIX="qemu-arm" qemu-arm build-armhf/run_tests -j 2 $(PLATFORM_TESTS)

# ---- fuzzing and memcheck (docs/security.md) ------------------------------------
#   make fuzz          clang + libFuzzer targets build-fuzz/fuzz_* (fuzz/fuzz_*.c), the
#                      library built with the same -fsanitize=fuzzer,address,undefined
#   make fuzz-run      seeds the corpora (fuzz/make-corpus.sh), replays fuzz/regressions/,
#                      then runs each target for FUZZ_SECONDS (default 60); fails on a crash
#   make valgrind      build/run_tests under valgrind memcheck (VALGRIND_TESTS: a filter)
FUZZ_CC      ?= clang
FUZZ_SAN     := -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZ_SRC     := $(wildcard fuzz/fuzz_*.c)
FUZZ_SECONDS ?= 60
VALGRIND_TESTS ?=
.PHONY: fuzz-run valgrind

fuzz:
	$(MAKE) CC=$(FUZZ_CC) BUILD=build-fuzz OPT="-O1 -g -fno-omit-frame-pointer $(FUZZ_SAN)" \
		LDFLAGS="$(FUZZ_SAN)" $(FUZZ_SRC:fuzz/%.c=build-fuzz/%)

$(BUILD)/obj/fuzz/%.o: EXTRA_CFLAGS := -Iserver
$(BUILD)/fuzz_%: $(BUILD)/obj/fuzz/fuzz_%.o $(BUILD)/libbitnet-server.a $(BUILD)/libbitnet.a
	$(CC) $(LDFLAGS) -o $@ $< $(BUILD)/libbitnet-server.a $(BUILD)/libbitnet.a $(LDLIBS)

fuzz-run: fuzz all
	FUZZ_SECONDS=$(FUZZ_SECONDS) fuzz/run.sh

valgrind: all $(BUILD)/run_tests
	BITNET_TEST_TIMEOUT=1800 valgrind -q --error-exitcode=1 --leak-check=full --show-leak-kinds=definite,indirect \
		--errors-for-leak-kinds=definite,indirect ./$(BUILD)/run_tests $(VALGRIND_TESTS)

clean:
	rm -rf build build-asan build-arm64 build-riscv64 build-armhf build-win64 build-fuzz

-include $(DEPS)
-include $(FUZZ_SRC:%.c=$(BUILD)/obj/%.d)
