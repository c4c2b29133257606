"""The runner: one loop joining a decider and an executor, and what makes it durable.

``loop`` (the :class:`~firepbt.runner.loop.Run` class), ``commands`` (carrying out a
decider's commands on an executor), ``drivers`` (the synchronous and asynchronous loops),
``state`` (snapshot, restore, checkpoint), ``best`` (the best network and the result),
``replay``, ``setup`` (the decider and the seeds), ``journal``, ``lineage``, ``checkpoint``
(the files), ``resume``. Reporting is not imported here: :mod:`firepbt.api` adds it.
"""
