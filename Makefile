# Huifang — `make run` starts the services, `make test` runs the whole suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SERVICE ?= revisit

.PHONY: install assets run demo test faults bench rabbitmq rabbitmq-management browser dlq replay contract lint typecheck up down clean

install: $(STAMP) assets

# The console's charts: Apache ECharts from the npm registry at an exact version, checked
# against the tarball's SHA-256 and unpacked where the gateway serves /static/ (never a CDN).
ECHARTS_VERSION := 5.6.0
ECHARTS_SHA256  := e1b82487dd7f8d9f0438eec1f1433051148e0095ac7a15d4db890afda45cf610
ECHARTS_DIR     := services/gateway/static/vendor/echarts

assets: $(ECHARTS_DIR)/.version-$(ECHARTS_VERSION)

$(ECHARTS_DIR)/.version-$(ECHARTS_VERSION):
	rm -rf $(ECHARTS_DIR)
	scripts/npm-file.sh echarts $(ECHARTS_VERSION) $(ECHARTS_SHA256) $(ECHARTS_DIR) \
		dist/echarts.min.js LICENSE NOTICE
	touch $@

# Exact versions: pyproject.toml pins our dependencies, requirements.lock the whole tree.
$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c requirements.lock -e ".[dev]"
	touch $(STAMP)

rabbitmq:
	@scripts/ensure-rabbitmq.sh

rabbitmq-management:
	@scripts/ensure-rabbitmq.sh --management

run: install rabbitmq
	@scripts/run-services.sh

demo: install
	$(BIN)/python -m scripts.demo

# The browser tests' Chromium, ChromeDriver and CJK fonts (apt-get, only when missing)
# and the pinned axe-core (npm pack, into .cache/).
browser:
	@scripts/ensure-browser.sh

test: install rabbitmq-management browser
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest

# The fault-injection suite at full size (make test runs it short): 1,000 complaints per
# scenario, each scenario's numbers printed and in test-artifacts/faults/.
faults: install rabbitmq-management
	FAULTS_COMPLAINTS=$(or $(COMPLAINTS),1000) $(BIN)/python -m pytest tests/faults -m faults -s

bench: install rabbitmq-management
	$(BIN)/python -m bench.run

# Dead letters: `make dlq SERVICE=revisit`, `make replay SERVICE=revisit ID=<event id>|ALL=1`
dlq: install
	$(BIN)/huifang-dlq list $(SERVICE)

replay: install
	$(BIN)/huifang-dlq replay $(SERVICE) $(if $(ALL),--all,--id $(ID))

contract: install
	$(BIN)/python -m scripts.asyncapi > docs/asyncapi.yaml
	$(BIN)/python -m scripts.openapi > docs/openapi.json
	$(BIN)/python -m scripts.policy_doc > docs/policy.md

lint: install
	$(BIN)/ruff check .

# The type hints of shared/ and the domain modules ([tool.mypy] in pyproject.toml says which).
typecheck: install
	$(BIN)/mypy

up: .env
	docker compose up -d --build

# docker-compose.yml's secrets, random, made once (the first admin's password is in it).
.env:
	$(PYTHON) -m scripts.compose_env > $@.new && chmod 600 $@.new && mv $@.new $@
	@echo "wrote .env: random secrets for docker compose (admin's password: HUIFANG_ADMIN_PASSWORD)"

down:
	docker compose down

clean:
	rm -rf $(VENV) .run *.egg-info .cache test-artifacts
