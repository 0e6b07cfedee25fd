# The two commands of the README:
#   make run    set up, build and run the main job
#   make test   set up, build and run every test (unit, integration, slow)
# Everything else is for contributors.

PRESET ?= release
BUILD_DIR := build/$(PRESET)
JOBS ?= $(shell nproc)
CMAKE_FLAGS :=
# ccache: share compiled objects between checkouts of this repository (paths are
# made relative to the checkout, the working directory is not hashed).
export CCACHE_BASEDIR := $(CURDIR)
export CCACHE_NOHASHDIR := 1
ifneq ($(CI),)
CMAKE_FLAGS += -DOUTRIDER_WERROR=ON
endif

.PHONY: run test setup configure build unit integration bench format tidy clean

setup:
	@scripts/setup.sh

configure: setup
	@cmake --preset $(PRESET) $(CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS)

run: build
	@scripts/run-main.sh $(BUILD_DIR)

test: build
	@cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) --timeout 600

unit: build
	@cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) -L unit

integration: build
	@cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) -L integration

bench:
	@scripts/setup.sh --bench
	@bench/run

format:
	@git ls-files '*.h' '*.cpp' | xargs clang-format -i

tidy: configure
	@git ls-files 'src/*.cpp' | xargs clang-tidy -p $(BUILD_DIR) --quiet

clean:
	rm -rf build
