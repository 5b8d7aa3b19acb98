# dealgate — `make run` and `make test` are the two commands of the README's quick start.
CONFIG ?= config/dealgate.ini
JOBS ?= 2

.PHONY: all deps deps-test build build-asan run test test-release test-asan bench fuzz format clean

all: build

deps:
	@scripts/deps.sh run

deps-test:
	@scripts/deps.sh test

build: deps
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDG_WERROR=ON >/dev/null
	@cmake --build build -j$(JOBS)

build-asan: deps-test
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DDG_SANITIZE=ON -DDG_WERROR=ON >/dev/null
	@cmake --build build-asan -j$(JOBS)

run: build
	./build/dealgate serve -c $(CONFIG)

test-release: deps-test build
	cd build && ctest --output-on-failure -j$(JOBS)

test-asan: build-asan
	cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --output-on-failure -j$(JOBS)

# The whole suite, normal build and ASan+UBSan build.
test: test-release test-asan

bench: build
	bench/gate.sh

# Every libFuzzer target for FUZZ_SECONDS each (clang build in build-fuzz; fuzz/run.sh).
FUZZ_SECONDS ?= 60
fuzz: deps-test
	fuzz/run.sh -t $(FUZZ_SECONDS)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-asan build-fuzz
