# Alert rules of the monitoring role: syntax check and unit tests with promtool, built from the
# pinned Prometheus module by tools/go-build.sh (the binary path is its last line of output).

ALERT_RULES := roles/monitoring/files/alert_rules.yml
ALERT_RULE_TESTS := $(wildcard tests/alert_rules/*_test.yml)

.PHONY: test-alert-rules

test-alert-rules: ## promtool check rules + promtool test rules (each alert firing and not firing)
	@promtool="$$(tools/go-build.sh promtool | tail -n 1)"; \
	"$$promtool" check rules $(ALERT_RULES); \
	"$$promtool" test rules $(ALERT_RULE_TESTS)

TEST_SUITES += test-alert-rules
