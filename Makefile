# scvrl Makefile. Knobs (each prints what it detected):
#   CC=...        C compiler (default cc)
#   OPENMP=0      build without OpenMP (single thread)
#   DEBUG=1       -O0 -g
#   SANITIZE=1    AddressSanitizer + UndefinedBehaviorSanitizer
#   FFMPEG=0      no FFmpeg: frame folders only (auto: pkg-config libavformat ...)
#   STB_INCLUDE=  folder holding stb/stb_image.h (auto: /usr/include)
#   CUDA=0        no CUDA backend (auto: nvcc on PATH); CUDA_ARCH=sm_90
#   NATIVE=0      no -march=native
# Targets: all (default), test, bench, fuzz, deps, clean.

CC       ?= cc
OPENMP   ?= 1
DEBUG    ?= 0
SANITIZE ?= 0
NATIVE   ?= 1

CFLAGS_BASE := -std=c11 -Wall -Wextra -Wno-unused-function -Wno-format-truncation -ffp-contract=off -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -I. -Iexamples/common
ifeq ($(DEBUG),1)
  OPT := -O0 -g
else
  OPT := -O2 -g
endif
ifeq ($(NATIVE),1)
  OPT += -march=native
endif
ifeq ($(SANITIZE),1)
  OPT += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  LDSAN := -fsanitize=address,undefined
endif
ifeq ($(OPENMP),1)
  OMPFLAG := -fopenmp
endif

# --- FFmpeg (optional) ---
FFMPEG_PKGS := libavformat libavcodec libavutil libswscale
ifndef FFMPEG
  FFMPEG := $(shell pkg-config --exists $(FFMPEG_PKGS) 2>/dev/null && echo 1 || echo 0)
endif
ifeq ($(FFMPEG),1)
  FF_CFLAGS := -DSCVRL_FFMPEG=1 $(shell pkg-config --cflags $(FFMPEG_PKGS))
  FF_LIBS   := $(shell pkg-config --libs $(FFMPEG_PKGS))
endif

# --- stb (libstb-dev) ---
STB_INCLUDE ?= $(shell for d in /usr/include /usr/local/include; do [ -f $$d/stb/stb_image.h ] && echo $$d && break; done)
ifneq ($(STB_INCLUDE),)
  STB_CFLAGS := -DSCVRL_STB=1 -I$(STB_INCLUDE)
  STB := 1
else
  STB := 0
endif

# --- CUDA (optional) ---
ifndef CUDA
  CUDA := $(shell command -v nvcc >/dev/null 2>&1 && [ -f scvrl-cuda.cu ] && echo 1 || echo 0)
endif
ifeq ($(CUDA),1)
  CUDA_ARCH ?= $(shell nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d . | sed 's/^/sm_/' | grep -E '^sm_[0-9]+$$' || echo sm_90)
  CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(shell command -v nvcc))
  CU_CFLAGS := -DSCVRL_CUDA=1
  CU_LIBS   := -L$(CUDA_HOME)/lib64 -L$(CUDA_HOME)/lib64/stubs -lcudart -lcublas -lcublasLt -lstdc++
  CU_OBJ    := build/scvrl-cuda.o
endif

CFLAGS  := $(CFLAGS_BASE) $(OPT) $(OMPFLAG) $(FF_CFLAGS) $(STB_CFLAGS) $(CU_CFLAGS) $(EXTRA_CFLAGS)
LDLIBS  := $(FF_LIBS) $(CU_LIBS) -lm -lpthread
LDFLAGS := $(OMPFLAG) $(LDSAN)

HEADERS  := scvrl.h $(wildcard models/*.h) $(wildcard examples/common/*.h)
COMMON_C := $(wildcard examples/common/*.c) $(wildcard models/*.c)
COMMON_O := $(patsubst %.c,build/%.o,$(COMMON_C))
PROGS_C  := $(wildcard examples/*.c)
PROGS    := $(patsubst %.c,%,$(PROGS_C))
TESTS_C  := $(wildcard tests/test-*.c)
TESTS    := $(patsubst tests/%.c,build/tests/%,$(TESTS_C))

.PHONY: all test testdeps runtests bench fuzz deps clean info
all: info $(PROGS) $(TESTS)

info:
	@echo "scvrl build: CC=$(CC) OPENMP=$(OPENMP) DEBUG=$(DEBUG) SANITIZE=$(SANITIZE) NATIVE=$(NATIVE) FFMPEG=$(FFMPEG) STB=$(STB)$(if $(STB_INCLUDE), ($(STB_INCLUDE))) CUDA=$(CUDA)$(if $(filter 1,$(CUDA)), ($(CUDA_ARCH)))"

build/examples/common/%.o: examples/common/%.c $(HEADERS) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

build/models/%.o: models/%.c $(HEADERS) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

# the library's implementation: scvrl.h compiled once with SCVRL_IMPLEMENTATION
build/scvrl.o: scvrl.h Makefile
	@mkdir -p build
	$(CC) $(CFLAGS) -x c -DSCVRL_IMPLEMENTATION -c scvrl.h -o $@

build/scvrl-cuda.o: scvrl-cuda.cu scvrl.h Makefile
	@mkdir -p build
	nvcc -O3 -arch=$(CUDA_ARCH) -std=c++17 -I. -Xcompiler -fopenmp -c $< -o $@

build/libcommon.a: $(COMMON_O) $(CU_OBJ)
	@rm -f $@
	ar rcs $@ $^

examples/%: examples/%.c build/scvrl.o build/libcommon.a $(HEADERS)
	$(CC) $(CFLAGS) $< -o $@ build/scvrl.o build/libcommon.a $(LDFLAGS) $(LDLIBS)

# a test that includes the implementation itself (to reach internals) does not link build/scvrl.o
build/tests/%: tests/%.c tests/test.h build/scvrl.o build/libcommon.a $(HEADERS)
	@mkdir -p build/tests
	$(CC) $(CFLAGS) -Itests $< -o $@ $(if $(shell grep -l '^#define SCVRL_IMPLEMENTATION' $<),,build/scvrl.o) build/libcommon.a $(LDFLAGS) $(LDLIBS)

# As root on Debian, `make test` first installs the build dependencies (idempotent), so it works alone
# on a fresh machine; otherwise it builds with what is there and the tests skip what needs the rest.
test: testdeps
	@$(MAKE) --no-print-directory runtests

testdeps:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && ! dpkg -s $(DEB_PKGS) >/dev/null 2>&1; then $(MAKE) --no-print-directory deps; fi

runtests: info $(TESTS) $(PROGS)
	@tests/run.sh $(TESTS)

bench: examples/bench
	./examples/bench ops

# libFuzzer targets (clang): FUZZ_SECONDS each (default 180); new corpus entries go to build/fuzz/.
FUZZ_SECONDS ?= 180
fuzz:
	@mkdir -p build/fuzz/corpus-safetensors build/fuzz/corpus-video
	clang -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -I. tests/fuzz/fuzz-safetensors.c -o build/fuzz/fuzz-safetensors -lm
	build/fuzz/fuzz-safetensors -max_total_time=$(FUZZ_SECONDS) -max_len=4096 build/fuzz/corpus-safetensors tests/fuzz/corpus-safetensors
	clang -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE $(FF_CFLAGS) $(STB_CFLAGS) -I. -Iexamples/common \
	  tests/fuzz/fuzz-video.c examples/common/video.c examples/common/dataset.c -o build/fuzz/fuzz-video $(FF_LIBS) -lm -lpthread
	build/fuzz/fuzz-video -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -timeout=20 -rss_limit_mb=4096 build/fuzz/corpus-video tests/fuzz/corpus-video

DEB_PKGS := build-essential pkg-config libstb-dev libavformat-dev libavcodec-dev libavutil-dev libswscale-dev
deps:
	@if [ "$$(id -u)" = 0 ]; then \
	  (dpkg -s $(DEB_PKGS) >/dev/null 2>&1 || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $(DEB_PKGS))); \
	else echo "run as root, or: sudo apt-get install -y $(DEB_PKGS)"; fi

clean:
	rm -rf build $(PROGS)
