# castgate: `make demo` and `make test` do all the set-up on a fresh Debian 12 machine (as root).
BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
JOBS       ?= $(shell nproc)
E2E_WORKERS ?= $(JOBS)
PYTEST     := /usr/bin/python3 -m pytest
CMAKE_ARGS ?=
# The builds only the tests use (sanitizer, fuzz) are unity builds: several source files compiled
# as one, so the headers they share (nlohmann/json, simdjson, doctest) are compiled once, not once
# per file; UNITY=OFF builds them file by file (quicker to rebuild after changing one file). The
# release build, which the demo and the benchmarks use too, is always built file by file.
UNITY      ?= ON

.PHONY: all deps build asan test unit e2e fuzz-smoke fuzz demo demo-stop bench bench-libssh-0.11 image-test format check-format clean

all: build

deps:
	@bash scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

asan: deps
	@cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCASTGATE_SANITIZE=ON -DCASTGATE_FAULT_INJECTION=ON \
	  -DCMAKE_UNITY_BUILD=$(UNITY) $(CMAKE_ARGS) >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)

# The sources' format, unit tests in both builds, fuzz targets over their seed corpora, then the
# end-to-end suite against the sanitizer build of castgate (every real-peer flow also checks
# memory safety).
test: build asan
	@echo "== clang-format"; $(MAKE) --no-print-directory check-format
	@bash scripts/test-setup.sh
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory fuzz-smoke
	@$(MAKE) --no-print-directory e2e

unit:
	@echo "== unit tests (release)"; $(BUILD)/tests/castgate_unit_tests -m
	@echo "== unit tests (ASan+UBSan)"; $(ASAN_BUILD)/tests/castgate_unit_tests -m

# The end-to-end tests run E2E_WORKERS at a time (pytest-xdist), except those that bound how long
# something takes (marked timing), which run one at a time after them, and the bulk transfers.
e2e:
	@echo "== end-to-end tests (castgate built with ASan+UBSan, real peers; $(E2E_WORKERS) at a time)"
	@CASTGATE_BIN=$(CURDIR)/$(ASAN_BUILD)/gateway/castgate \
	  $(PYTEST) -q -p no:cacheprovider -n $(E2E_WORKERS) -m "not bulk and not timing" tests/e2e $(PYTEST_ARGS)
	@echo "== end-to-end tests that bound a time (ASan+UBSan build, one at a time)"
	@CASTGATE_BIN=$(CURDIR)/$(ASAN_BUILD)/gateway/castgate \
	  $(PYTEST) -q -p no:cacheprovider -m "timing and not bulk" tests/e2e $(PYTEST_ARGS)
	@echo "== end-to-end bulk transfers (release build)"
	@CASTGATE_BIN=$(CURDIR)/$(BUILD)/gateway/castgate \
	  $(PYTEST) -q -p no:cacheprovider -m bulk tests/e2e $(PYTEST_ARGS)

fuzz-smoke:
	@echo "== fuzz targets (short run)"
	@CC=clang CXX=clang++ cmake -S . -B $(FUZZ_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug \
	  -DCASTGATE_FUZZ=ON -DBUILD_TESTING=OFF -DCMAKE_UNITY_BUILD=$(UNITY) $(CMAKE_ARGS) >/dev/null
	@cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzzers
	@bash tests/fuzz/run.sh $(FUZZ_BUILD) 4

fuzz: 
	@FUZZ_SEED=0 bash tests/fuzz/run.sh $(FUZZ_BUILD) 300

# The container image (Dockerfile), built with buildah (no container engine needed; the layers are
# kept in /var/tmp/castgate-image), then run on a read-only root filesystem as its own user,
# recording a real ssh session to a real sshd. As root; not part of `make test`.
image-test: deps
	@bash scripts/build-image.sh
	@echo "== container image tests"
	@$(PYTEST) -q -p no:cacheprovider tests/image $(PYTEST_ARGS)

demo: build
	@bash scripts/demo.sh $(BUILD)

demo-stop:
	@bash scripts/demo-stop.sh

bench: build
	@bash bench/run.sh $(BUILD)

# The same benchmarks with castgate built against Debian 13's libssh 0.11.5 (fetched from the
# Debian mirror in this machine's apt sources, checksum verified, built locally):
# bench/results-libssh-0.11/report.md.
bench-libssh-0.11: build
	@bash bench/libssh-0.11.sh

format:
	@clang-format -i $$(git ls-files '*.cpp' '*.h')

check-format:
	@clang-format --dry-run --Werror $$(git ls-files '*.cpp' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
