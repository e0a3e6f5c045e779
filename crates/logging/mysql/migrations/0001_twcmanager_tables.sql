-- TWCManager's three tables as its MySQL documentation defines them (kept if they exist).
CREATE TABLE IF NOT EXISTS charge_sessions (
    chargeid INT,
    startTime DATETIME,
    startkWh INT,
    slaveTWC VARCHAR(4),
    endTime DATETIME,
    endkWh INT,
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
    kWh INT,
    voltsPhaseA INT,
    voltsPhaseB INT,
    voltsPhaseC INT,
    PRIMARY KEY (slaveTWC, time)
);
