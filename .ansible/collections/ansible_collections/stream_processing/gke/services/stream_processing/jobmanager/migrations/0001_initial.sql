-- Jobs, their task assignments, TaskManagers and checkpoints with per-piece storage locations.
CREATE TABLE jobs (
    job_id       text PRIMARY KEY,
    name         text NOT NULL,
    spec         jsonb NOT NULL,
    parallelism  integer NOT NULL CHECK (parallelism > 0),
    state        text NOT NULL CHECK (state IN ('scheduled', 'running', 'restarting', 'cancelled')),
    restarts     integer NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE taskmanagers (
    taskmanager_id text PRIMARY KEY,
    slots          integer NOT NULL CHECK (slots > 0),
    registered_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE task_assignments (
    job_id         text NOT NULL REFERENCES jobs (job_id) ON DELETE CASCADE,
    task_index     integer NOT NULL CHECK (task_index >= 0),
    taskmanager_id text,
    attempt        integer NOT NULL DEFAULT 0,
    PRIMARY KEY (job_id, task_index)
);

CREATE TABLE checkpoints (
    job_id         text NOT NULL REFERENCES jobs (job_id) ON DELETE CASCADE,
    checkpoint_id  bigint NOT NULL CHECK (checkpoint_id > 0),
    state          text NOT NULL CHECK (state IN ('pending', 'completed', 'failed', 'discarded')),
    triggered_at   timestamptz NOT NULL,
    completed_at   timestamptz,
    failure_reason text,
    PRIMARY KEY (job_id, checkpoint_id)
);

CREATE TABLE checkpoint_pieces (
    job_id         text NOT NULL,
    checkpoint_id  bigint NOT NULL,
    task_index     integer NOT NULL,
    attempt        integer NOT NULL,
    taskmanager_id text NOT NULL,
    storage        text NOT NULL CHECK (storage IN ('gcs', 'local')),
    location       text NOT NULL,
    size_bytes     bigint NOT NULL,
    PRIMARY KEY (job_id, checkpoint_id, task_index),
    FOREIGN KEY (job_id, checkpoint_id) REFERENCES checkpoints (job_id, checkpoint_id) ON DELETE CASCADE
);

CREATE INDEX checkpoints_by_state ON checkpoints (job_id, state, checkpoint_id);
