# Tenantry's front door. Every target works on a fresh machine with Go
# installed: tools are pinned Go tools (gen/go.mod), PostgreSQL, Chromium and
# oathtool are installed with apt when missing.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO      ?= go
BIN     := bin
# Every Go module of the workspace; `go test ./...` does not cross modules.
MODULES := ./gen ./services/platform ./services/kit ./services/tenant-registry ./services/identity ./services/notes ./services/notes-node ./services/deploy
PKGS    := $(addsuffix /...,$(MODULES))
# withpg runs a command with a throwaway (or persistent) PostgreSQL cluster.
# It is built, not `go run`, so exit codes and signals pass through exactly.
WITHPG  := $(BIN)/withpg

.PHONY: help
help: ## List the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  make %-16s %s\n", $$1, $$2}'

.PHONY: run
# PLACEMENTS=2 starts a second private cluster too, the placement "second".
run: postgres build ## Start PostgreSQL (private cluster unless DATABASE_URL is set) and every service; PLACEMENTS=2 adds a second placement.
	@$(if $(PLACEMENTS),TENANTRY_DEV_PLACEMENTS=$(PLACEMENTS) )deploy/scripts/run-dev.sh

.PHONY: test
test: postgres chromium oathtool check-generated lint $(WITHPG) ## Run every module's tests against a throwaway PostgreSQL.
	$(WITHPG) -- $(GO) test -count=1 -timeout 25m $(PKGS)

.PHONY: bench
# Each bench runs even when an earlier one could not take every measure
# (each prints its table regardless); the target fails if any did.
bench: postgres build ## Start the real system and print the benchmark tables (registry, then identity).
	status=0; \
	$(GO) run ./services/tenant-registry/cmd/registry-bench -registry-bin $(BIN)/tenant-registry || status=$$?; \
	$(GO) run ./services/identity/cmd/identity-bench -registry-bin $(BIN)/tenant-registry -identity-bin $(BIN)/identity || status=$$?; \
	$(GO) run ./services/notes/cmd/notes-bench -registry-bin $(BIN)/tenant-registry -identity-bin $(BIN)/identity -notes-bin $(BIN)/notes || status=$$?; \
	exit $$status

.PHONY: build
build: $(WITHPG) ## Build the service binaries and the tenantry CLI into bin/.
	$(GO) build -o $(BIN)/ ./services/tenant-registry/cmd/tenant-registry ./services/tenant-registry/cmd/tenantry ./services/identity/cmd/identity ./services/notes/cmd/notes

.PHONY: $(WITHPG)
$(WITHPG):
	@mkdir -p $(BIN)
	$(GO) build -o $(WITHPG) ./services/platform/cmd/withpg

# Images: reproducible, so every timestamp is the commit's time unless
# SOURCE_DATE_EPOCH says otherwise; labels name the version and commit.
IMAGE_DIR      ?= $(BIN)/images
IMAGE_GOARCH   ?= amd64
IMAGE_VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
IMAGE_REVISION ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
IMAGE_SOURCE   ?= $(shell git remote get-url origin 2>/dev/null || echo https://tenantry.dev)
IMAGE_LICENSES ?= NOASSERTION
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)

.PHONY: image
image: ## Build each service's container image (no Docker daemon) as an OCI layout under bin/images/ and print the digests.
	SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) $(GO) run ./services/deploy/cmd/image -go $(GO) -out $(IMAGE_DIR) -goarch $(IMAGE_GOARCH) \
		-version $(IMAGE_VERSION) -revision $(IMAGE_REVISION) -source $(IMAGE_SOURCE) -licenses $(IMAGE_LICENSES)

# Everything buf generate writes (see buf.gen.yaml): gen/, and the OpenAPI
# documents each server embeds.
GENERATED := gen services/tenant-registry/internal/server/openapi services/identity/internal/server/openapi

.PHONY: generate
generate: ## Regenerate gen/ and the embedded OpenAPI documents from proto/ with the pinned plugins.
	$(GO) tool buf generate

.PHONY: check-generated
check-generated: ## Fail if generated files are stale: regenerate into a temporary tree and compare.
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(GO) tool buf generate -o "$$tmp"; \
	for dir in $(GENERATED); do \
		if ! diff -r -q -x go.mod -x go.sum "$$tmp/$$dir" "$$dir" >/dev/null; then \
			diff -r -x go.mod -x go.sum "$$tmp/$$dir" "$$dir" | head -40; \
			echo "$$dir is stale: run 'make generate' and commit the result"; exit 1; \
		fi; \
	done

.PHONY: lint
lint: ## buf lint (STANDARD), buf format check, go vet and gofmt.
	$(GO) tool buf lint
	$(GO) tool buf format -d --exit-code
	$(GO) vet $(PKGS)
	@out=$$(gofmt -l gen services); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

.PHONY: breaking
breaking: ## Check proto changes against main for breaking changes.
	$(GO) tool buf breaking --against '.git#branch=main'

.PHONY: postgres
postgres: ## Install PostgreSQL with apt when its binaries are missing.
	@deploy/scripts/ensure-postgres.sh

.PHONY: chromium
chromium: ## Install Chromium with apt when /usr/bin/chromium is missing (identity's browser test drives it).
	@deploy/scripts/ensure-chromium.sh

.PHONY: oathtool
oathtool: ## Install oathtool with apt when it is missing (identity's TOTP tests compute codes with it).
	@deploy/scripts/ensure-oathtool.sh

.PHONY: clean
clean: ## Remove build output (keeps the dev database under .dev/).
	rm -rf $(BIN)
