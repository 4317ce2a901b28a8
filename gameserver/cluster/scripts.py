"""The directory's Lua scripts: every decision that must hold across workers.

Redis runs each script atomically, so two workers never both take the last seat
and two rooms never get one name. :mod:`.directory` says what the keys are and
reads the scripts' answers; ``gameserver/trio/directory.py`` sends them.
"""

from __future__ import annotations

COUNTER_TTL_MS = 86_400_000
"""Counters live a day past the last use: ids restart only after a whole day idle."""

PLAYER_ID_BLOCK = 4096
"""Player ids a worker takes at once (refilled in the background when half used)."""

# Shared by the scripts. Every script's ARGV starts with the prefix and the records'
# time to live (ms); the helpers below keep every key they touch expiring.
_PRELUDE = """
local P = ARGV[1]
local TTL = tonumber(ARGV[2])
local COUNTER_TTL = COUNTER_TTL_MS
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local function bump(counter)
  local n = redis.call('INCR', counter)
  redis.call('PEXPIRE', counter, COUNTER_TTL)
  return n
end

local function raise(counter, floor)
  if tonumber(redis.call('GET', counter) or '0') < floor then
    redis.call('SET', counter, floor)
  end
  redis.call('PEXPIRE', counter, COUNTER_TTL)
end

-- A matchmade room stays among the open ones while it has a free seat, or a reservation
-- that may lapse and free one (matchmaking must find it to give that seat back). A room
-- created by name (mm '0') is never open: it is joined by its name only (PROTOCOL.md 5.2).
local function reopen(name, key)
  local seats = tonumber(redis.call('HGET', key, 'seats'))
  local taken = tonumber(redis.call('HGET', key, 'taken'))
  local open = P .. ':open:' .. redis.call('HGET', key, 'game')
  if redis.call('HGET', key, 'mm') ~= '1' then
    redis.call('ZREM', open, name)
  elseif taken < seats or redis.call('ZCARD', P .. ':rv:' .. name) > 0 then
    redis.call('ZADD', open, redis.call('HGET', key, 'seq'), name)
    redis.call('PEXPIRE', open, TTL)
  else
    redis.call('ZREM', open, name)
  end
end

local function give_back(name, key, n)
  if n <= 0 then return end
  if redis.call('HINCRBY', key, 'taken', -n) < 0 then redis.call('HSET', key, 'taken', 0) end
  reopen(name, key)
end

-- A new record for a room of worker wid (any reservations of an older room of that
-- name are dropped: they were for that room, not this one). mm: '1' if matchmaking
-- created it (only those are open to matchmaking), '0' if it was created by name.
local function open_room(name, wid, url, game, seats, taken, mm)
  local key = P .. ':r:' .. name
  redis.call('DEL', P .. ':rv:' .. name)
  redis.call('HSET', key, 'worker', wid, 'url', url, 'game', game, 'seats', seats,
             'taken', taken, 'seq', bump(P .. ':seq:room'), 'mm', mm)
  redis.call('PEXPIRE', key, TTL)
  reopen(name, key)
  return key
end

-- The room's record with expired reservations given back, or nil if it is gone or its
-- worker is (no presence: it died without cleaning up; its rooms go with it).
local function live(name)
  local key = P .. ':r:' .. name
  local owner = redis.call('HGET', key, 'worker')
  if not owner then return nil end
  if redis.call('EXISTS', P .. ':w:' .. owner) == 0 then
    redis.call('ZREM', P .. ':open:' .. redis.call('HGET', key, 'game'), name)
    redis.call('DEL', key, P .. ':rv:' .. name)
    return nil
  end
  give_back(name, key, redis.call('ZREMRANGEBYSCORE', P .. ':rv:' .. name, '-inf', now))
  return key
end
""".replace("COUNTER_TTL_MS", str(COUNTER_TTL_MS))

CLAIM = (
    _PRELUDE
    + """
-- ARGV: P, ttl, game ('' = none), room ('' = matchmaking), worker, url, seats if created,
--       may create ('1'/'0'), ticket, ticket ttl ms, player, name, user, spectate ('1'/'0')
local game, want, wid, url = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local new_seats, may_create = tonumber(ARGV[7]), ARGV[8] == '1'
local ticket, ticket_ttl = ARGV[9], tonumber(ARGV[10])
local spectate = ARGV[14] == '1'

-- A spectator takes no seat: it is told where the room is (a ticket, for another worker).
local function watch(name, key)
  local owner = redis.call('HGET', key, 'worker')
  if owner == wid then
    return {'here', name, redis.call('HGET', key, 'game'), '0', redis.call('HGET', key, 'mm')}
  end
  local tkey = P .. ':t:' .. ticket
  redis.call('HSET', tkey, 'room', name, 'worker', owner, 'game', redis.call('HGET', key, 'game'),
             'seats', redis.call('HGET', key, 'seats'), 'player', ARGV[11], 'name', ARGV[12],
             'user', ARGV[13], 'spectate', '1')
  redis.call('PEXPIRE', tkey, ticket_ttl)
  return {'there', name, redis.call('HGET', key, 'url'), ticket}
end

local function seat(name, key)
  if spectate then return watch(name, key) end
  local seats = tonumber(redis.call('HGET', key, 'seats'))
  if tonumber(redis.call('HGET', key, 'taken')) >= seats then return nil end
  redis.call('HINCRBY', key, 'taken', 1)
  local owner = redis.call('HGET', key, 'worker')
  if owner == wid then
    reopen(name, key)
    return {'here', name, redis.call('HGET', key, 'game'), '0', redis.call('HGET', key, 'mm')}
  end
  -- Another worker's room: the seat waits behind a single-use ticket.
  local tkey = P .. ':t:' .. ticket
  redis.call('HSET', tkey, 'room', name, 'worker', owner, 'game', redis.call('HGET', key, 'game'),
             'seats', seats, 'player', ARGV[11], 'name', ARGV[12], 'user', ARGV[13],
             'mm', redis.call('HGET', key, 'mm'))
  redis.call('PEXPIRE', tkey, ticket_ttl)
  local rv = P .. ':rv:' .. name
  redis.call('ZADD', rv, now + ticket_ttl, ticket)
  redis.call('PEXPIRE', rv, math.max(TTL, ticket_ttl))
  reopen(name, key)
  return {'there', name, redis.call('HGET', key, 'url'), ticket}
end

local function create(name, mm)
  if spectate then return {'refused', 'no_such_room', 'no room to watch'} end
  if not may_create then
    return {'refused', 'too_many_rooms', 'no more rooms may be opened for you here'}
  end
  open_room(name, wid, url, game, new_seats, 1, mm)
  return {'here', name, game, '1', mm}
end

if want ~= '' then
  local key = live(want)
  if key == nil then
    if game == '' then return {'refused', 'no_such_room', "no room named '" .. want .. "'"} end
    return create(want, '0')
  end
  local runs = redis.call('HGET', key, 'game')
  if game ~= '' and runs ~= game then
    return {'refused', 'room_game_mismatch', "room '" .. want .. "' runs '" .. runs .. "'"}
  end
  return seat(want, key) or {'refused', 'room_full', "room '" .. want .. "' is full"}
end

-- Matchmaking: the oldest matchmade room of the game with a free seat, on any live worker.
local open = P .. ':open:' .. game
for _, name in ipairs(redis.call('ZRANGE', open, 0, -1)) do
  local key = live(name)
  if key == nil then
    redis.call('ZREM', open, name)
  else
    local granted = seat(name, key)
    if granted then return granted end
  end
end
while true do
  local name = game .. '-' .. bump(P .. ':seq:name:' .. game)
  if redis.call('EXISTS', P .. ':r:' .. name) == 0 then return create(name, '1') end
end
"""
)

CONSUME = (
    _PRELUDE
    + """
-- ARGV: P, ttl, ticket, worker, user, url, room asked for in the hello ('' = none)
local tkey = P .. ':t:' .. ARGV[3]
local fields = redis.call('HGETALL', tkey)
if #fields == 0 then return {'bad', 'unknown, expired or already used ticket'} end
redis.call('DEL', tkey)
local f = {}
for i = 1, #fields, 2 do f[fields[i]] = fields[i + 1] end
local key = live(f.room)
if f.spectate == '1' then
  -- A spectator's ticket held no seat: the room must still be there, on this worker.
  if key == nil or redis.call('HGET', key, 'worker') ~= ARGV[4] or f.user ~= ARGV[5]
     or (ARGV[7] ~= '' and ARGV[7] ~= f.room) then
    return {'bad', 'the room to watch is gone, or the ticket is not for here'}
  end
  return {'ok', f.room, f.game, f.player, f.name, '1'}
end
local reserved = redis.call('ZREM', P .. ':rv:' .. f.room, ARGV[3])
local why = nil
if f.worker ~= ARGV[4] then why = 'ticket for another worker'
elseif f.user ~= ARGV[5] then why = 'ticket for another user'
elseif ARGV[7] ~= '' and ARGV[7] ~= f.room then why = 'ticket for another room'
elseif key and redis.call('HGET', key, 'worker') ~= ARGV[4] then
  why = 'the room moved to another worker'
end
if why then
  -- Used up all the same (single use); the seat it held goes back.
  if key and reserved == 1 then give_back(f.room, key, 1) end
  return {'bad', why}
end
if key == nil then
  -- The room was disposed meanwhile: this worker opens it again, with this seat.
  open_room(f.room, ARGV[4], ARGV[6], f.game, f.seats, 1, f.mm or '0')
elseif reserved == 0 then
  -- Its reservation had lapsed and was given back: take the seat again, if still free.
  if tonumber(redis.call('HGET', key, 'taken')) >= tonumber(redis.call('HGET', key, 'seats')) then
    return {'bad', 'ticket expired and the room filled up'}
  end
  redis.call('HINCRBY', key, 'taken', 1)
  reopen(f.room, key)
end
return {'ok', f.room, f.game, f.player, f.name, '0', f.mm or '0'}
"""
)

RELEASE = (
    _PRELUDE
    + """
-- ARGV: P, ttl, worker, then pairs: room, seats to give back
for i = 4, #ARGV, 2 do
  local key = P .. ':r:' .. ARGV[i]
  if redis.call('HGET', key, 'worker') == ARGV[3] then
    give_back(ARGV[i], key, tonumber(ARGV[i + 1]))
  end
end
return 1
"""
)

LEAVE = (
    _PRELUDE
    + """
-- ARGV: P, ttl, worker, then the rooms this worker disposed of (or all its rooms, when
-- it stops, with its presence: KEYS-free, so one call).
for i = 4, #ARGV do
  local key = P .. ':r:' .. ARGV[i]
  if redis.call('HGET', key, 'worker') == ARGV[3] then
    redis.call('ZREM', P .. ':open:' .. redis.call('HGET', key, 'game'), ARGV[i])
    redis.call('DEL', key, P .. ':rv:' .. ARGV[i])
  end
end
return 1
"""
)

REFRESH = (
    _PRELUDE
    + """
-- ARGV: P, ttl, worker, presence document, highest player id held, reconcile ('1'/'0'),
--       then pairs: room, players seated here.
-- Renews presence and the rooms; with reconcile (no seat request in flight), sets each
-- room's taken to its players plus live reservations. Raises the id and name counters
-- to what this worker holds (a Redis restarted empty must not hand them out again).
-- Answers the rooms whose record is gone or another worker's (to register again).
local wid = ARGV[3]
local mine = cjson.decode(ARGV[4]).url
redis.call('SET', P .. ':w:' .. wid, ARGV[4], 'PX', TTL)
local workers = P .. ':workers'
redis.call('ZREMRANGEBYSCORE', workers, '-inf', now)
-- Another id at this worker's URL is the dead predecessor this one replaced (same
-- host, index and port): its presence goes now, and its rooms with it (live()), so
-- nobody is sent here for a room this process does not have.
for _, other in ipairs(redis.call('ZRANGE', workers, 0, -1)) do
  if other ~= wid and mine then
    local doc = redis.call('GET', P .. ':w:' .. other)
    if doc and cjson.decode(doc).url == mine then
      redis.call('DEL', P .. ':w:' .. other)
      redis.call('ZREM', workers, other)
    end
  end
end
redis.call('ZADD', workers, now + TTL, wid)
redis.call('PEXPIRE', workers, TTL)
raise(P .. ':seq:player', tonumber(ARGV[5]))
local lost = {}
for i = 7, #ARGV, 2 do
  local name, seated = ARGV[i], tonumber(ARGV[i + 1])
  local key = live(name)
  if key == nil or redis.call('HGET', key, 'worker') ~= wid then
    table.insert(lost, name)
  else
    redis.call('PEXPIRE', key, TTL)
    local rv = P .. ':rv:' .. name
    if redis.call('PTTL', rv) < TTL then redis.call('PEXPIRE', rv, TTL) end
    if ARGV[6] == '1' then
      redis.call('HSET', key, 'taken', seated + redis.call('ZCARD', rv))
    end
    reopen(name, key)
    local game = redis.call('HGET', key, 'game')
    local n = string.match(name, '^' .. game:gsub('%W', '%%%0') .. '%-(%d+)$')
    if n then raise(P .. ':seq:name:' .. game, tonumber(n)) end
  end
end
return lost
"""
)

REGISTER = (
    _PRELUDE
    + """
-- ARGV: P, ttl, worker, url, then groups: room, game, seats, seated here, matchmade.
-- Answers the rooms another worker holds under the same name meanwhile.
local taken_over = {}
for i = 5, #ARGV, 5 do
  local name, game, seats, seated = ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3])
  local mm = ARGV[i + 4]  -- used for a record Redis lost; a record it kept keeps its own
  local key = live(name)
  if key and redis.call('HGET', key, 'worker') ~= ARGV[3] then
    table.insert(taken_over, name)
  elseif key then
    redis.call('HSET', key, 'url', ARGV[4], 'seats', seats,
               'taken', seated + redis.call('ZCARD', P .. ':rv:' .. name))
    redis.call('PEXPIRE', key, TTL)
    reopen(name, key)
  else
    open_room(name, ARGV[3], ARGV[4], game, seats, seated, mm)
  end
end
return taken_over
"""
)

TAKE_IDS = (
    _PRELUDE
    + """
-- ARGV: P, ttl, block size, highest id this worker holds: the last id of a fresh block.
local counter = P .. ':seq:player'
raise(counter, tonumber(ARGV[4]))
local last = redis.call('INCRBY', counter, ARGV[3])
redis.call('PEXPIRE', counter, COUNTER_TTL)
return last
"""
)
