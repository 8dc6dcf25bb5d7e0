"""Rule and activity files to a `RuleSet` (`loader`), with the strict YAML reader and the
`rules check` command."""
