-- What an agent's policy allows its tools beyond their names (JSON of nexus_core::ToolPolicy,
-- e.g. {"network": true}); older agents get the defaults.
ALTER TABLE agents ADD COLUMN tool_policy TEXT NOT NULL DEFAULT '{}';
