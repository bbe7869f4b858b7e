"""`simguard simulate`: a seeded population of operators' events with its ground truth.

    from tooling.simulator.population import generate
    from tooling.simulator.files import write
    from tooling.simulator.post import post
    from tooling.simulator.check import check

    scenario = generate(sims=2000, seed=7, now=now, rules=settings.rules)
    write(scenario, Path("var/sim"))                 # JSON Lines, truth.json, border cells
    post(scenario, "http://127.0.0.1:8080", keys)    # registrations, activations, observations
    print(check(settings, scenario.truth, timeout=120).table())

Modules: `world` (clock, identifiers, cells, what a SIM does), `actors` and
`suspects` (who does what, and the codes each must end with), `population`
(the mix and `generate`), `truth` (codes, scoring, truth.json), `files`,
`post`, `check`, `command` (the click command). Nothing is imported here, so
that registering the command costs `simguard` nothing at start-up.
"""
