-- The sandbox database: patients and appointments (seeded from the workload's test-data seed),
-- what requests and jobs write, and the hot rows (K clinic counters) check-ins may share.
CREATE TABLE patients (
  id bigserial PRIMARY KEY,
  dfn text NOT NULL UNIQUE,
  sta3n text NOT NULL,
  confirmed_at timestamp,
  confirmation text,
  created_at timestamp NOT NULL DEFAULT now(),
  updated_at timestamp NOT NULL DEFAULT now()
);
CREATE TABLE appointments (
  ien bigint PRIMARY KEY,
  dfn text NOT NULL,
  sta3n text NOT NULL,
  clinic text NOT NULL,
  checked_in_at timestamp,
  created_at timestamp NOT NULL DEFAULT now(),
  updated_at timestamp NOT NULL DEFAULT now()
);
CREATE TABLE appointment_summaries (
  id bigserial PRIMARY KEY,
  ien bigint NOT NULL REFERENCES appointments (ien),
  created_at timestamp NOT NULL DEFAULT now(),
  updated_at timestamp NOT NULL DEFAULT now()
);
CREATE TABLE summary_results (
  id bigserial PRIMARY KEY,
  appointment_summary_id bigint NOT NULL REFERENCES appointment_summaries (id),
  ien bigint NOT NULL,
  clinic text NOT NULL,
  created_at timestamp NOT NULL DEFAULT now(),
  updated_at timestamp NOT NULL DEFAULT now()
);
CREATE TABLE clinic_counters (
  id integer PRIMARY KEY,
  checkins bigint NOT NULL DEFAULT 0
);
