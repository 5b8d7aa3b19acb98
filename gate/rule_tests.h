/* rule_tests.h — `dealgate test [-c FILE] CASES...`: declarative rule tests, no network.
 *
 * A case is an event, what the co-sell systems would answer for each cloud, optional
 * history (the deal's last stage), overrides and clock, and the expected outcome with its
 * reason and warning codes. Each case runs through the real rules engine exactly as the
 * gate would run it (rules_lookup_clouds, then rules_decide), with the connectors' facts
 * built from the case instead of looked up. Format: docs/rule-tests.md.
 */
#ifndef DG_RULE_TESTS_H
#define DG_RULE_TESTS_H

/* Runs the command; argv holds the arguments after "test". Prints one PASS/FAIL line per
 * case on stdout and then exactly "N passed, N failed". Returns 0 when every case passed,
 * 1 when one failed, 2 when the config or a case file is unusable (named on stderr). */
int gate_rule_tests_main(int argc, char **argv);

#endif
