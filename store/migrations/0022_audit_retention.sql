-- The audit log's retention (retention.audit). The log stays append-only
-- but for its oldest entries: the pruner first raises the horizon (it
-- only moves forward), then deletes entries below it; a delete of an
-- entry at or above the horizon is refused, as every update is.
CREATE TABLE audit_horizon (
	id     INTEGER PRIMARY KEY CHECK (id = 1),
	before INTEGER NOT NULL  -- entries with a smaller id may have been pruned
);
INSERT INTO audit_horizon (id, before) VALUES (1, 0);
CREATE TRIGGER audit_horizon_forward BEFORE UPDATE ON audit_horizon WHEN NEW.before < OLD.before
BEGIN SELECT RAISE(ABORT, 'the audit horizon only moves forward'); END;
CREATE TRIGGER audit_horizon_kept BEFORE DELETE ON audit_horizon
BEGIN SELECT RAISE(ABORT, 'the audit horizon is kept'); END;
DROP TRIGGER audit_no_delete;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit WHEN OLD.id >= (SELECT before FROM audit_horizon WHERE id = 1)
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: only entries older than retention.audit are pruned'); END;
