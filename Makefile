# Thin wrapper over CMake. The two quick-start commands:
#   make run    install what is missing, build (Release), run the main job
#   make test   install what is missing, build (Release), run the whole test suite
# Also: make sanitize (ASan+UBSan build of the tests), make bench, make docs (API reference), make format,
#       make install PREFIX=<dir> (headers, library, CMake package, pkg-config file, data, binaries).
BUILD      ?= build
JOBS       ?= $(shell nproc)
CMAKE_ARGS ?=
PREFIX     ?= /usr/local

.PHONY: deps build run test sanitize bench docs format install clean

deps:
	@scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DEBL_WERROR=ON $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

run: build
	$(BUILD)/experiments/toy2d

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

sanitize: deps
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEBL_SANITIZE=ON -DEBL_WERROR=ON >/dev/null
	@cmake --build build-asan -j $(JOBS)
	cd build-asan && ctest --output-on-failure -j $(JOBS)

bench: build
	@scripts/install-deps.sh python3 python3-torch python3-sklearn
	bench/compare.py $(BUILD)/bench/bench_mlp
	bench/rbm_vs_sklearn.py $(BUILD)/bench/bench_rbm
	bench/compare_layers.py $(BUILD)/bench/bench_layers
	bench/mpi_scaling.py $(BUILD)/bench/bench_mpi
	$(BUILD)/bench/bench_higher_order
	bench/python_bench.py $(BUILD)

docs: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DEBL_WERROR=ON $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD) --target docs

install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

format:
	clang-format -i $$(git ls-files '*.hpp' '*.cpp')

clean:
	rm -rf $(BUILD) build-asan
