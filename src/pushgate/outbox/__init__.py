"""The transactional outbox: work that must follow a committed change (pushes, webhooks),
written in the change's own transaction and handled at least once by the background runtime
(DESIGN.md "Outbox row")."""
