"""The Lua scripts of the Redis store: each change to a room is one of them, so it runs
atomically and assigns the room's next sequence in the same step.

Every script touches only the keys of one room (one hash tag), so it runs on Redis
Cluster too. KEYS are always: state, members, people, log, meeting. ARGV[1] is the event
time and ARGV[2] the log's length bound. Scripts answer `{status, epoch, entries, ...}`
where each entry is `{seq, kind, payload, reason, by, time}` as appended; `status` is "OK"
or a domain error code.
"""

from __future__ import annotations

# state: hash {epoch, head}; exists exactly while the room is open.
# members: zset participant id -> sequence of its join (join order).
# people: hash participant id -> participant JSON.
# log: stream of entries with ids 0-<sequence>, trimmed to the replay buffer.
_PRELUDE = """
local state, members, people, log, meeting = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local now, maxlen = ARGV[1], ARGV[2]
local entries = {}
local epoch = redis.call('HGET', state, 'epoch') or ''

local function open_room(new_epoch)
  redis.call('DEL', state, members, people, log)
  redis.call('HSET', state, 'epoch', new_epoch, 'head', 0)
  epoch = new_epoch
end

local function append(kind, payload, reason, by)
  local seq = redis.call('HINCRBY', state, 'head', 1)
  redis.call('XADD', log, 'MAXLEN', maxlen, '0-' .. seq,
             'k', kind, 'p', payload, 'r', reason, 'b', by, 't', now)
  entries[#entries + 1] = {seq, kind, payload, reason, by, now}
  return seq
end

local function remove(pid)
  redis.call('ZREM', members, pid)
  redis.call('HDEL', people, pid)
end

-- An empty room is forgotten; the next join opens a new epoch. Answers the participants
-- left (0: the room closed).
local function close_if_empty()
  local remaining = redis.call('ZCARD', members)
  if remaining == 0 then
    redis.call('DEL', state, members, people, log)
  end
  return remaining
end

-- The participants in join order, as {id, json} pairs.
local function roster()
  local ids = redis.call('ZRANGE', members, 0, -1)
  local out = {}
  for i, pid in ipairs(ids) do
    out[i] = {pid, redis.call('HGET', people, pid)}
  end
  return out
end

local function joinable(raw)
  if not raw then return 'MEETING_NOT_FOUND' end
  local status = cjson.decode(raw)['status']
  if status ~= 'scheduled' and status ~= 'live' then return 'MEETING_NOT_ACTIVE' end
  return nil
end

-- Wakes the watchers of this room on every replica (one message per change: the head).
local function finish(status, ...)
  if #entries > 0 then redis.call('PUBLISH', state, epoch .. ':' .. entries[#entries][1]) end
  return {status, epoch, entries, ...}
end
"""

# ARGV: now, maxlen, new_epoch, participant id, participant JSON, user id, edge id,
# socket id, multiple sessions ("1"/"0"), capacity.
JOIN = (
    _PRELUDE
    + """
local new_epoch, pid, pjson, user, edge, sock = ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local multiple, capacity = ARGV[9] == '1', tonumber(ARGV[10])
local refused = joinable(redis.call('GET', meeting))
if refused then return {refused} end
local current = {}
if epoch ~= '' then current = roster() end
local others, replaced = {}, {}
for _, pair in ipairs(current) do
  local p = cjson.decode(pair[2])
  if p['edge_id'] == edge and p['socket_id'] == sock then
    local rest = {}
    for _, other in ipairs(current) do
      if other[1] ~= pair[1] then rest[#rest + 1] = other[2] end
    end
    return {'ALREADY', epoch, {}, pair[2], rest, redis.call('HGET', state, 'head')}
  end
  if not multiple and p['user_id'] == user then
    replaced[#replaced + 1] = pair
  else
    others[#others + 1] = pair[2]
  end
end
if #current - #replaced >= capacity then return {'ROOM_FULL'} end
if epoch == '' then open_room(new_epoch) end
for _, pair in ipairs(replaced) do
  remove(pair[1])
  append('left', pair[2], 'replaced', '')
end
local seq = append('joined', pjson, '', '')
redis.call('ZADD', members, seq, pid)
redis.call('HSET', people, pid, pjson)
return finish('OK', others)
"""
)

# ARGV: now, maxlen, participant id, reason.
LEAVE = (
    _PRELUDE
    + """
local pid, reason = ARGV[3], ARGV[4]
local pjson = redis.call('HGET', people, pid)
if epoch == '' or not pjson then return {'NOT_IN_MEETING'} end
remove(pid)
append('left', pjson, reason, '')
return finish('OK', close_if_empty())
"""
)

# ARGV: now, maxlen, participant id, JSON expected now, new JSON, changed by.
UPDATE = (
    _PRELUDE
    + """
local pid, expected, pjson, by = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local current = redis.call('HGET', people, pid)
if epoch == '' or not current then return {'NOT_IN_MEETING'} end
if current ~= expected then return {'CONFLICT'} end
redis.call('HSET', people, pid, pjson)
append('updated', pjson, '', by)
return finish('OK')
"""
)

# ARGV: now, maxlen, participant id, message JSON.
CHAT = (
    _PRELUDE
    + """
local pid, message = ARGV[3], ARGV[4]
if epoch == '' or redis.call('HEXISTS', people, pid) == 0 then return {'NOT_IN_MEETING'} end
append('chat', message, '', '')
return finish('OK')
"""
)

# ARGV: now, maxlen, ended meeting JSON, ended by, drop_at.
END = (
    _PRELUDE
    + """
local ended_json, by = ARGV[3], ARGV[4]
local raw = redis.call('GET', meeting)
if not raw then return {'MEETING_NOT_FOUND'} end
local was_ended = cjson.decode(raw)['status'] == 'ended'
redis.call('SET', meeting, ended_json)
if epoch == '' or was_ended then return {'OK', epoch, {}} end
-- The room stays open (empty): watchers read MeetingEnded itself, in order.
redis.call('DEL', members, people)
append('ended', '', '', by)
redis.call('HSET', state, 'drop_at', ARGV[5])
return finish('OK')
"""
)

# ARGV: now, maxlen, new_epoch, edge id, then per record: participant id, JSON as it is
# to be stored, the edge and socket the record claims. Re-adds the participants an edge
# re-announces (rules.may_restore, in Lua): a record naming another edge, or a
# participant held on another edge or socket, is refused; one held as claimed is skipped.
# Answers {"REJECTED"} (meeting gone or ended) or {"OK", epoch, entries, refused ids}.
RESTORE = (
    _PRELUDE
    + """
local new_epoch, edge = ARGV[3], ARGV[4]
if joinable(redis.call('GET', meeting)) then return {'REJECTED'} end
local refused = {}
for i = 5, #ARGV, 4 do
  local pid, pjson, claimed_edge, claimed_socket = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local held = nil
  if epoch ~= '' then held = redis.call('HGET', people, pid) end
  if claimed_edge ~= '' and claimed_edge ~= edge then
    refused[#refused + 1] = pid
  elseif held then
    local h = cjson.decode(held)
    if h['edge_id'] ~= edge or h['socket_id'] ~= claimed_socket then refused[#refused + 1] = pid end
  else
    if epoch == '' then open_room(new_epoch) end
    local seq = append('joined', pjson, '', '')
    redis.call('ZADD', members, seq, pid)
    redis.call('HSET', people, pid, pjson)
  end
end
if epoch ~= '' then close_if_empty() end
return finish('OK', refused)
"""
)

# ARGV: now, maxlen, edge id, socket id. Read-only: the idempotent outcome of a join
# from a socket already in the room: {"ALREADY", epoch, {}, own JSON, others, head}.
REJOIN = (
    _PRELUDE
    + """
local edge, sock = ARGV[3], ARGV[4]
if epoch == '' or joinable(redis.call('GET', meeting)) then return {'NO'} end
local current = roster()
for _, pair in ipairs(current) do
  local p = cjson.decode(pair[2])
  if p['edge_id'] == edge and p['socket_id'] == sock then
    local rest = {}
    for _, other in ipairs(current) do
      if other[1] ~= pair[1] then rest[#rest + 1] = other[2] end
    end
    return {'ALREADY', epoch, {}, pair[2], rest, redis.call('HGET', state, 'head')}
  end
end
return {'NO'}
"""
)

# ARGV: now, maxlen, drop_at. Forgets an ended meeting's empty room and its log, unless
# the meeting was registered again (or ended again later) meanwhile.
DROP_ENDED = (
    _PRELUDE
    + """
local raw = redis.call('GET', meeting)
if epoch == '' or redis.call('HGET', state, 'drop_at') ~= ARGV[3] then return {'NO'} end
if (raw and cjson.decode(raw)['status'] ~= 'ended') or redis.call('ZCARD', members) > 0 then
  return {'NO'}
end
redis.call('DEL', state, members, people, log)
redis.call('PUBLISH', state, 0)
return {'OK'}
"""
)

# ARGV: after sequence, after epoch, limit. Answers {"CLOSED"}, {"SNAPSHOT"} or
# {"OK", epoch, entries, head}.
READ_AFTER = """
local state, log = KEYS[1], KEYS[2]
local after, after_epoch, limit = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local epoch = redis.call('HGET', state, 'epoch')
if not epoch then return {'CLOSED'} end
if epoch ~= after_epoch then return {'SNAPSHOT'} end
local head = tonumber(redis.call('HGET', state, 'head'))
if after >= head then return {'OK', epoch, {}, head} end
local first = redis.call('XRANGE', log, '-', '+', 'COUNT', 1)
local oldest = head + 1
if #first > 0 then oldest = tonumber(string.match(first[1][1], '-(%d+)$')) end
if after + 1 < oldest then return {'SNAPSHOT'} end
local out = {}
for i, item in ipairs(redis.call('XRANGE', log, '0-' .. (after + 1), '+', 'COUNT', limit)) do
  local f = {}
  for j = 1, #item[2], 2 do f[item[2][j]] = item[2][j + 1] end
  out[i] = {tonumber(string.match(item[1], '-(%d+)$')), f.k, f.p, f.r, f.b, f.t}
end
return {'OK', epoch, out, head}
"""

# A consistent view of one room: {meeting JSON or false, created, epoch, head, pairs}.
SNAPSHOT = """
local state, members, people, meeting, created = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local raw = redis.call('GET', meeting)
local epoch = redis.call('HGET', state, 'epoch') or ''
local head = redis.call('HGET', state, 'head') or '0'
local out = {}
if epoch ~= '' then
  for i, pid in ipairs(redis.call('ZRANGE', members, 0, -1)) do
    out[i] = redis.call('HGET', people, pid)
  end
end
return {raw or false, redis.call('GET', created) or false, epoch, head, out}
"""
