-- What a key is for: 'operator' keys send their PLMN ids' events and read
-- those SIMs; 'regulator' keys send nothing and read any SIM with its case's
-- full evidence.
ALTER TABLE api_keys ADD COLUMN role TEXT NOT NULL DEFAULT 'operator';
