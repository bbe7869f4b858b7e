# The two commands a newcomer needs: `make demo` and `make test`.
# Everything they depend on is installed here: the virtualenv, Python packages,
# the Kafka jars (Maven, cached under .cache/), and Debian's PostgreSQL and
# Prometheus for the tests that run them for real.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
KAFKA_LIBS := .cache/kafka-libs
M2_REPO := .cache/m2
export SIMGUARD_KAFKA_LIBS := $(CURDIR)/$(KAFKA_LIBS)

.PHONY: setup system-packages kafka-jars lint typecheck test demo bench soak clean

setup: $(BIN)/.installed kafka-jars

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

kafka-jars: $(KAFKA_LIBS)/.resolved

$(KAFKA_LIBS)/.resolved: deploy/kafka/pom.xml
	rm -rf $(KAFKA_LIBS)
	mvn --batch-mode --quiet -f deploy/kafka/pom.xml -Dmaven.repo.local=$(CURDIR)/$(M2_REPO) \
	    dependency:copy-dependencies -DoutputDirectory=$(CURDIR)/$(KAFKA_LIBS)
	touch $@

# PostgreSQL and Prometheus come from Debian (tests start their own servers);
# the sqlite3 shell is the registry import benchmark's baseline.
system-packages:
	@if ! command -v promtool >/dev/null || ! command -v sqlite3 >/dev/null \
	    || ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	    echo "installing Debian packages: postgresql prometheus sqlite3"; \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    $$SUDO apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends \
	        postgresql prometheus sqlite3 >/dev/null; \
	fi

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

test: setup system-packages lint typecheck
	$(BIN)/pytest

demo: setup
	$(BIN)/simguard demo

bench: setup system-packages
	$(BIN)/simguard bench

soak: setup
	$(BIN)/simguard soak

clean:
	rm -rf $(VENV) .cache var build *.egg-info
