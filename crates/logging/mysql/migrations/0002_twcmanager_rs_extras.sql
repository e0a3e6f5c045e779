-- twcmanager (Rust) additions: the open session's last update, grid and battery power, and
-- tables for slave power, policy changes and faults. TWCManager's columns are unchanged.
ALTER TABLE charge_sessions ADD COLUMN lastTime DATETIME NULL, ADD COLUMN lastkWh INT NULL;
CREATE INDEX charge_sessions_end ON charge_sessions (endTime);
CREATE INDEX charge_sessions_vin ON charge_sessions (vehicleVIN, startTime);
ALTER TABLE green_energy ADD COLUMN gridW DECIMAL(9,3) NULL, ADD COLUMN batteryW DECIMAL(9,3) NULL;
CREATE TABLE IF NOT EXISTS slave_power (
    slaveTWC VARCHAR(4) NOT NULL,
    time DATETIME NOT NULL,
    kind VARCHAR(16) NOT NULL,
    state VARCHAR(32),
    actualA DECIMAL(6,2),
    offeredA DECIMAL(6,2),
    powerW DECIMAL(9,1),
    PRIMARY KEY (slaveTWC, time, kind)
);
CREATE TABLE IF NOT EXISTS policy_changes (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    time DATETIME NOT NULL,
    fromPolicy VARCHAR(64) NOT NULL,
    toPolicy VARCHAR(64) NOT NULL,
    reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS faults (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    time DATETIME NOT NULL,
    component VARCHAR(64) NOT NULL,
    message TEXT NOT NULL
);
