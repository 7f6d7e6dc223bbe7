-- `zta audit query --action NAME` filters on the action's name alone, which the index on
-- (action_kind, action_name, time) cannot serve.
CREATE INDEX IF NOT EXISTS zta_audit_action_name_time ON zta_audit (action_name, time);
