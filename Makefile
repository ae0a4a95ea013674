# Parley: `make run` starts a server on http://127.0.0.1:8080, `make test` runs every test.
# Both install what is missing (Debian 12 packages) first. `make cluster` starts three nodes
# behind HAProxy on http://127.0.0.1:8080 instead (docs/SCALING.md); `make cluster-stop`.
BUILD      ?= build
ASAN_BUILD ?= build-asan
BUILD_TYPE ?= RelWithDebInfo
LISTEN     ?= 127.0.0.1:8080
DATA_DIR   ?= ./data
CLUSTER_DIR ?= ./cluster-data
CTEST_J    ?= 2

.PHONY: all deps test-deps build run cluster cluster-stop cluster-status test test-unit test-asan test-browser screenshots bench format format-check clean

all: build

deps:
	@bash tools/deps.sh

test-deps:
	@bash tools/deps.sh --test

build: deps
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) >/dev/null
	@cmake --build $(BUILD)

run: build
	$(BUILD)/src/parleyd/parleyd --listen $(LISTEN) --data-dir $(DATA_DIR) --web-root web

# A local cluster in the background: two Redis, two PostgreSQL (shards), three parleyd nodes (8081-8083)
# and HAProxy on 127.0.0.1:8080 (tools/cluster.sh; its data, logs and configs in CLUSTER_DIR).
cluster: test-deps
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) >/dev/null
	@cmake --build $(BUILD) --target parleyd parley
	@BUILD=$(BUILD) bash tools/cluster.sh start $(CLUSTER_DIR)

cluster-stop:
	@bash tools/cluster.sh stop $(CLUSTER_DIR)

cluster-status:
	@bash tools/cluster.sh status $(CLUSTER_DIR)

# Every test, then every test again under AddressSanitizer + UndefinedBehaviorSanitizer.
test: test-deps build
	ctest --test-dir $(BUILD) --output-on-failure -j $(CTEST_J)
	@$(MAKE) --no-print-directory test-asan

test-unit: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(CTEST_J) -L unit

test-asan: test-deps
	@# -g1 (line tables) is all a sanitizer report needs, and compiles faster than full -g.
	@cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG=-g1 \
	  -DPARLEY_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD)
	@# The fault run under load (label faults) is for the plain build: its timing is the point.
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --test-dir $(ASAN_BUILD) --output-on-failure -j $(CTEST_J) -LE faults

# The browser tests alone (headless Chromium against the web client).
test-browser: test-deps build
	ctest --test-dir $(BUILD) --output-on-failure -L browser

# Regenerates docs/screenshots/ from the browser tests.
screenshots: test-deps build
	PARLEY_UPDATE_SCREENSHOTS=1 ctest --test-dir $(BUILD) --output-on-failure -L browser

# Reproduces docs/BENCHMARKS.md (the build make run uses, in build/; curves in docs/bench/).
bench: deps
	@bash tools/bench.sh

format:
	@git ls-files '*.cpp' '*.h' | xargs clang-format -i

format-check:
	@git ls-files '*.cpp' '*.h' | xargs clang-format --dry-run --Werror

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
