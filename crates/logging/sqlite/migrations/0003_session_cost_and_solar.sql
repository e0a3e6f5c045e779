-- Sessions page (issue 22): the car's name and state of charge, the energy split into solar
-- and grid, and the cost at the tariff's prices. Existing rows keep their values; the new
-- columns stay NULL for them (shown as unknown).
ALTER TABLE charge_sessions ADD COLUMN vehicleName VARCHAR(64);
ALTER TABLE charge_sessions ADD COLUMN startSoC DECIMAL(5,1);
ALTER TABLE charge_sessions ADD COLUMN endSoC DECIMAL(5,1);
ALTER TABLE charge_sessions ADD COLUMN integratedkWh DECIMAL(10,3);
ALTER TABLE charge_sessions ADD COLUMN solarkWh DECIMAL(10,3);
ALTER TABLE charge_sessions ADD COLUMN unmeteredkWh DECIMAL(10,3);
ALTER TABLE charge_sessions ADD COLUMN gridCost DECIMAL(12,4);
ALTER TABLE charge_sessions ADD COLUMN unpricedkWh DECIMAL(10,3);
ALTER TABLE charge_sessions ADD COLUMN solarValue DECIMAL(12,4);
ALTER TABLE charge_sessions ADD COLUMN currency VARCHAR(3);
