"""Ops runbooks: multi-step procedures over an inventory, host-first and resumable.

`model` holds the parsed values, `load` validates `runbooks/NAME.yaml` (and a
recipe's `around_batch`) into them, `subst` resolves `${...}` for one host,
`actions` turns each step into what is sent (shared by a run and its dry
run), `kinds` runs them, and `engine` drives batches, the failure budget,
undo, the journal and `--resume`.
"""
