"""Ops runbooks: multi-step procedures over an inventory, host-first and resumable.

`model` holds the parsed values and `load` validates `runbooks/NAME.yaml`
(and a recipe's `around_batch`) into them; `params` checks `--param`;
`subst` resolves `${...}` for one host, quoted for where it lands;
`actions` turns each step into exactly what is sent or run, shared by a run
and its dry run (`dryrun`); `kinds` runs the simple kinds and `deploying`
the deploy and rollback steps (the rollout's own scripts, under the run's
lease); `hoststeps` runs one host's steps with undo and journaling, for
`engine` (batches, one failure budget, leases) and `around` (a deploy's
`around_batch`); `resume` reads back what a run did; `show` prints.
The verb that wires this to a project is `fleetdist.runbooks`.
"""
