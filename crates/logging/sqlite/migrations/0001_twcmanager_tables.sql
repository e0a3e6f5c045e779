-- TWCManager's three tables, exactly as its SQLite module creates them (kept if they exist).
CREATE TABLE IF NOT EXISTS charge_sessions (
    chargeid INTEGER,
    startTime DATETIME,
    startkWh INTEGER,
    slaveTWC VARCHAR(4),
    endTime DATETIME,
    endkWh INTEGER,
    vehicleVIN VARCHAR(17),
    PRIMARY KEY (startTime, slaveTWC)
);
CREATE TABLE IF NOT EXISTS green_energy (
    time DATETIME,
    genW DECIMAL(9,3),
    conW DECIMAL(9,3),
    chgW DECIMAL(9,3),
    PRIMARY KEY (time)
);
CREATE TABLE IF NOT EXISTS slave_status (
    slaveTWC VARCHAR(4),
    time DATETIME,
    kWh INTEGER,
    voltsPhaseA INTEGER,
    voltsPhaseB INTEGER,
    voltsPhaseC INTEGER,
    PRIMARY KEY (slaveTWC, time)
);
