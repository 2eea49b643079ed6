-- Argo CD health check for checkpoint.dev/CheckpointReplicaSet (argocd-cm key
-- resource.customizations.health.checkpoint.dev_CheckpointReplicaSet). It reads the same
-- conditions kstatus reads (see README.md, "Status and health"). Argo CD runs custom health
-- scripts with only Lua's base and table libraries, so this uses no string functions.
local hs = {}

local function say(status, message)
  hs.status = status
  hs.message = message
  return hs
end

if obj.metadata.deletionTimestamp ~= nil then
  return say("Progressing", "Pending deletion: the agents are removing the replicas")
end

local generation = obj.metadata.generation or 0
local status = obj.status or {}
if status.observedGeneration == nil or status.observedGeneration < generation then
  return say("Progressing", "Waiting for the agents to observe generation " .. tostring(generation))
end

local conditions = {}
for _, c in ipairs(status.conditions or {}) do
  conditions[c.type] = c
end
local function holds(kind)
  return conditions[kind] ~= nil and conditions[kind].status == "True"
end
local function describe(c)
  return c.reason .. ": " .. (c.message or "")
end

if obj.spec ~= nil and obj.spec.paused == true then
  local ready = status.readyReplicas or 0
  return say("Suspended", "spec.paused is true (" .. tostring(ready) .. " replicas ready)")
end
if holds("Stalled") then
  return say("Degraded", describe(conditions.Stalled))
end
if holds("Reconciling") then
  return say("Progressing", describe(conditions.Reconciling))
end
if holds("Ready") then
  return say("Healthy", conditions.Ready.message or "")
end
if conditions.Ready ~= nil then
  return say("Progressing", describe(conditions.Ready))
end
return say("Progressing", "Waiting for the first status")
