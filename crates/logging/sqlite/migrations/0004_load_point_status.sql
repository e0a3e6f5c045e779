-- twcmanager (Rust) addition: external load points (a Wall Connector Gen3, an OCPP charger), one
-- row per load point at the slaves' status interval, as slave_status/slave_power are for Gen2.
CREATE TABLE IF NOT EXISTS load_point_status (
    loadPoint VARCHAR(64) NOT NULL,
    time DATETIME NOT NULL,
    kind VARCHAR(16) NOT NULL,
    state VARCHAR(32) NOT NULL,
    stale SMALLINT NOT NULL,
    drawA DECIMAL(6,2),
    allocatedA DECIMAL(6,2) NOT NULL,
    reservedA DECIMAL(6,2) NOT NULL,
    powerW DECIMAL(9,1),
    ampsPhaseA DECIMAL(6,2),
    ampsPhaseB DECIMAL(6,2),
    ampsPhaseC DECIMAL(6,2),
    voltsPhaseA DECIMAL(6,1),
    voltsPhaseB DECIMAL(6,1),
    voltsPhaseC DECIMAL(6,1),
    sessionWh DECIMAL(12,1),
    lifetimeWh DECIMAL(14,1),
    problem TEXT,
    PRIMARY KEY (loadPoint, time)
);
