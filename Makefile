# Thin wrapper over CMake. `make test` and `make run` work on a fresh Debian 12 machine:
# they install the missing packages first (as root), then build.
DEB_PACKAGES := build-essential cmake pkg-config python3 openssl \
	libevent-dev libhttp-parser-dev libssl-dev libyaml-dev libjansson-dev \
	libcurl4-openssl-dev libpcre2-dev libcmocka-dev prometheus chromium
BUILD ?= build
SAN_BUILD ?= build-san
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CONF ?= conf/gatehouse.yaml
CTEST_FLAGS ?= --output-on-failure

.PHONY: all deps build test run check-config sanitize test-sanitize bench format clean

all: build

deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then \
	  echo "missing packages:$$missing"; \
	  echo "run: sudo apt-get update && sudo apt-get install -y$$missing"; exit 1; \
	fi; \
	echo "installing:$$missing"; \
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing

$(BUILD)/CMakeCache.txt: | deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

test: build
	cd $(BUILD) && ctest $(CTEST_FLAGS) -j $(JOBS)

run: build
	$(BUILD)/gatehouse -t -c $(CONF)
	tests/support/demo.sh $(BUILD)/gatehouse $(CONF)

sanitize: deps
	cmake -S . -B $(SAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DGW_SANITIZE=ON
	cmake --build $(SAN_BUILD) -j $(JOBS)

test-sanitize: sanitize
	cd $(SAN_BUILD) && ctest $(CTEST_FLAGS) -j $(JOBS)

bench: build
	$(BUILD)/router_bench
	$(BUILD)/snapshot_bench

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(SAN_BUILD)
