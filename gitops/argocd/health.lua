-- Argo CD health check for Coalmine's ModelDeployment and ModelVersion
-- (coalmine.dev/v1alpha1). One script for both kinds: install it under
-- resource.customizations.health.coalmine.dev_ModelDeployment and
-- resource.customizations.health.coalmine.dev_ModelVersion (docs/gitops.md).
-- Argo CD runs it with gopher-lua (Lua 5.1): `obj` is the live object, the
-- result is {status = Healthy|Progressing|Degraded|Suspended, message = ...}.
--
-- It reads the same fields as kstatus (Flux), in the same order, so both
-- tools agree: an unobserved generation is in progress; Stalled (or a
-- RolledBack/Degraded phase) is a failure; Reconciling is in progress;
-- Ready=True is healthy. A Paused rollout is Suspended (Argo's convention).

local function condition(status, type_)
  if status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == type_ then
      return c
    end
  end
  return nil
end

local function is_true(status, type_)
  local c = condition(status, type_)
  return c ~= nil and c.status == "True"
end

-- The status message, else the named condition's message, else `default`.
local function message(status, type_, default)
  if status.message ~= nil and status.message ~= "" then
    return status.message
  end
  local c = condition(status, type_)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  return default
end

local function health(status_, msg)
  return {status = status_, message = msg}
end

local function model_deployment(obj)
  local st = obj.status
  local generation = obj.metadata.generation
  if st.observedGeneration ~= nil and generation ~= nil and st.observedGeneration ~= generation then
    return health("Progressing", "Waiting for the operator to observe generation " .. tostring(generation))
  end
  local phase = st.phase
  if is_true(st, "Stalled") or phase == "RolledBack" or phase == "Degraded" then
    return health("Degraded", message(st, "Stalled", "Phase " .. tostring(phase)))
  end
  if phase == "Paused" then
    return health("Suspended", message(st, "Progressing", "Rollout paused"))
  end
  if is_true(st, "Reconciling") or phase == "Progressing" then
    return health("Progressing", message(st, "Reconciling", "Rollout in progress"))
  end
  if is_true(st, "Ready") then
    return health("Healthy", message(st, "Ready", "Serving"))
  end
  return health("Progressing", message(st, "Ready", "Waiting for the model deployment to become ready"))
end

local function model_version(obj)
  local st = obj.status
  local generation = obj.metadata.generation
  if st.observedGeneration ~= nil and generation ~= nil and st.observedGeneration ~= generation then
    return health("Progressing", "Waiting for the operator to observe generation " .. tostring(generation))
  end
  if st.phase == "Invalid" or is_true(st, "Stalled") then
    return health("Degraded", message(st, "Stalled", "Invalid model version"))
  end
  if st.phase == "Validated" then
    return health("Healthy", message(st, "Ready", "Artifact verified"))
  end
  return health("Progressing", message(st, "Reconciling", "Waiting for the artifact check"))
end

if obj.status == nil then
  return health("Progressing", "Waiting for the operator to report status")
end
if obj.kind == "ModelVersion" then
  return model_version(obj)
end
return model_deployment(obj)
