-- Like hook.lua, at a fixed pace: every connection waits PACE_MS between its requests,
-- so CONNECTIONS × 1000 / PACE_MS requests/s at most (bench/run.sh picks PACE_MS for
-- half of the measured peak). Arguments: those of hook.lua, then PACE_MS.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "hook.lua")

local hook_init = init
function init(args)
  hook_init(args)
  pace = tonumber(args[5])
end

function delay()
  return pace
end
