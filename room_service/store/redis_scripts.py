"""The Lua scripts of the Redis store: each change to a room is one of them, so it runs
atomically and assigns the room's next sequence in the same step.

Every script touches only the keys of one room (one hash tag), so it runs on Redis
Cluster too. KEYS are always: state, members, people, log, meeting. ARGV[1] is the event
time and ARGV[2] the log's length bound. Scripts answer `{status, epoch, entries, ...}`
where each entry is `{seq, kind, payload, reason, by, time}` as appended; `status` is "OK"
or a domain error code.
"""

from __future__ import annotations

# state: hash {epoch, head, rv (roster version: see `redis_rosters`)}; exists exactly
# while the room is open.
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

-- Who is in the room by socket and by user, kept in `state` so that a join finds its own
-- socket and its user's other sessions without decoding everyone: `s:<edge> <socket>` ->
-- participant id, `u:<user>` -> participant ids (space-separated). Hints only, always
-- checked against `people` (an ended room keeps stale ones until it is dropped).
local function socket_field(edge, sock)
  return 's:' .. edge .. ' ' .. sock
end

local function index(pid, user, edge, sock)
  redis.call('HSET', state, socket_field(edge, sock), pid)
  local field = 'u:' .. user
  local ids = redis.call('HGET', state, field)
  redis.call('HSET', state, field, ids and (ids .. ' ' .. pid) or pid)
end

local function unindex(pid, p)
  local field = socket_field(p['edge_id'], p['socket_id'])
  if redis.call('HGET', state, field) == pid then redis.call('HDEL', state, field) end
  field = 'u:' .. p['user_id']
  local kept = {}
  for id in string.gmatch(redis.call('HGET', state, field) or '', '%S+') do
    if id ~= pid then kept[#kept + 1] = id end
  end
  if #kept > 0 then
    redis.call('HSET', state, field, table.concat(kept, ' '))
  else
    redis.call('HDEL', state, field)
  end
end

local function add(pid, seq, pjson, user, edge, sock)
  redis.call('ZADD', members, seq, pid)
  redis.call('HSET', people, pid, pjson)
  index(pid, user, edge, sock)
end

local function remove(pid)
  local raw = redis.call('HGET', people, pid)
  if raw then unindex(pid, cjson.decode(raw)) end
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

-- The JSON of everyone but `pid` (nil: everyone), in join order, read in chunks.
local function others_than(pid)
  local ids = redis.call('ZRANGE', members, 0, -1)
  local out = {}
  for first = 1, #ids, 512 do
    local found = redis.call('HMGET', people, unpack(ids, first, math.min(first + 511, #ids)))
    for i, raw in ipairs(found) do
      if ids[first + i - 1] ~= pid then out[#out + 1] = raw end
    end
  end
  return out
end

-- The participant that `edge`'s socket `sock` is, as {id, json}, if it is in the room.
local function seated(edge, sock)
  if epoch == '' then return nil end
  local pid = redis.call('HGET', state, socket_field(edge, sock))
  local raw = pid and redis.call('HGET', people, pid)
  if not raw then return nil end
  local p = cjson.decode(raw)
  if p['edge_id'] ~= edge or p['socket_id'] ~= sock then return nil end
  return {pid, raw}
end

-- The idempotent answer to a join from a socket already in the room.
local function already(own)
  return {'ALREADY', epoch, {}, own[2], others_than(own[1]), redis.call('HGET', state, 'head')}
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

# ARGV: now, maxlen, participant id, JSON expected now, new JSON, changed by. Answers
# CONFLICT with the current JSON when it is not the expected one, SAME (nothing logged)
# when the new JSON is the current one.
UPDATE = (
    _PRELUDE
    + """
local pid, expected, pjson, by = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local current = redis.call('HGET', people, pid)
if epoch == '' or not current then return {'NOT_IN_MEETING'} end
if current ~= expected then return {'CONFLICT', current} end
if pjson == current then return {'SAME'} end
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
    local p = cjson.decode(pjson)
    add(pid, append('joined', pjson, '', ''), pjson, p['user_id'], p['edge_id'], p['socket_id'])
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
if joinable(redis.call('GET', meeting)) then return {'NO'} end
local own = seated(ARGV[3], ARGV[4])
if own then return already(own) end
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
