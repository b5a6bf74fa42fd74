"""From verdict to action, pure: host lists of the nodes that passed (hostlist.py), a suggested action per
failing finding and node (suggest.py), Slurm drain/resume command lines and reasons (slurm.py).

Every list here reads the one verdict the planner reads (`plan.judged_fleet.exclusions`); nothing runs a
command: the session and the CLI do, from the argv lists built here.
"""
