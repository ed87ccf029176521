"""Background jobs on a maintained queue library (procrastinate): the messenger between the
process that accepted work and whichever process of the cluster does it. The work's state lives
in the domain's own tables (core/batches.py); see queue.py for the backends."""
