"""The event worker (issue 13, docs/decisions/030-webhooks.md): ``gateway worker``.

Guarantees, in order:

1. Every committed event reaches every interested consumer at least once, under its stable id
   (``outbox.id``, the webhooks' ``webhook-id``): nothing is lost when a worker dies at any
   point, because each step's state is in the database before the step's effect is considered
   done, and a claim is only a lease that expires.
2. Any number of workers may run, on any hosts: on PostgreSQL they share the work without two
   of them running one delivery at once (``FOR UPDATE SKIP LOCKED`` and a lease); on SQLite the
   single writer serialises the claims. A delivery runs twice only when a worker died (or
   outlived its lease) mid-delivery.
3. A failed delivery is retried with exponential back-off and full jitter
   (:mod:`gateway.worker.backoff`) until 24 hours after its dispatch, then it is dead (a dead
   letter, kept and replayable).

Two steps, each its own short transaction: :mod:`~gateway.worker.dispatch` turns undispatched
outbox rows into one ``event_deliveries`` row per interested consumer and stamps the event;
:mod:`~gateway.worker.deliver` leases due deliveries, runs them outside any transaction, and
records each outcome (fenced by the attempt number, so a late answer from a worker whose lease
expired changes nothing). The consumers are passed in (:mod:`gateway.worker.consumers` holds
the production tuple), so tests run the worker with their own."""
