-- The elected JobManager. Holding the session advisory lock is what makes a JobManager the leader;
-- this single row tells the standbys where the leader is, since when and whether it is still renewing.
CREATE TABLE jobmanager_leader (
    singleton      boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    leader_id      text NOT NULL,
    advertised_url text NOT NULL,
    term           bigint NOT NULL CHECK (term > 0),
    since          timestamptz NOT NULL,
    heartbeat      timestamptz NOT NULL
);
