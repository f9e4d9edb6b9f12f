"""What a deploy ships: the artifact, and the checked payload a host is sent for it.

Neutral ground between the builders (which make artifacts) and the
orchestrator (which sends payloads): neither imports the other.
"""
