#!/usr/bin/env python3
"""ref.py: a reference evaluator of wfp IR version 1, written from docs/ir.md.

A direct interpreter of the program as written (no lifting): it is the
third, independent opinion that the differential test compares the native
module and the V8 run against. It knows nothing of the compiler, the state
bytes or fuel; it counts steps the way the stepper protocol defines them
(one per effect, plus the step that ends the invocation).

Where docs/ir.md does not say what happens (the wording of a trap on a
JSON true/false/null, get_i64 of 2.0 or 1e3, the output form of a fn
value), it raises Unspecified: the driver then compares native and V8 only.

    python3 ref.py PROGRAM.json [--input JSON] [--ctx KEY=I64]...

prints the report the invocation should give, in the shape of
`wfp-host --report` (without fuel and properties).
"""
import json
import re
import sys

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1
IDENT = re.compile(r'[A-Za-z_$][A-Za-z0-9_$]*\Z')
INT_TEXT = re.compile(r'-?(0|[1-9][0-9]*)\Z')


def wrap(v):
    v &= (1 << 64) - 1
    return v - (1 << 64) if v >= (1 << 63) else v


# ---- JSON that keeps what the IR keeps: key order and number text ----

class RawNum:
    """A JSON number kept as written ('1.50' stays '1.50')."""
    __slots__ = ('text',)

    def __init__(self, text):
        self.text = str(text)

    def __eq__(self, other):
        return isinstance(other, RawNum) and other.text == self.text

    def __hash__(self):
        return hash(self.text)

    def __repr__(self):
        return self.text


class JObj(list):
    """A JSON object: its members in order, as (key, value) pairs."""

    def get(self, key, default=None):
        for k, v in self:
            if k == key:
                return v
        return default

    def has(self, key):
        return any(k == key for k, _ in self)


def loads(text):
    return json.loads(text, object_pairs_hook=JObj, parse_int=RawNum, parse_float=RawNum)


def dump_str(s):
    # escapes only where JSON requires it (docs/ir.md §17); non-ASCII as is
    return json.dumps(s, ensure_ascii=False)


def dumps(v):
    """Compact JSON text of a tree of JObj/dict/list/str/int/RawNum/bool/None."""
    out = []

    def w(x):
        if x is None:
            out.append('null')
        elif x is True:
            out.append('true')
        elif x is False:
            out.append('false')
        elif isinstance(x, RawNum):
            out.append(x.text)
        elif isinstance(x, int):
            out.append(str(x))
        elif isinstance(x, str):
            out.append(dump_str(x))
        elif isinstance(x, (JObj, dict)):
            out.append('{')
            items = x if isinstance(x, JObj) else x.items()
            for i, (k, val) in enumerate(items):
                if i:
                    out.append(',')
                out.append(dump_str(k))
                out.append(':')
                w(val)
            out.append('}')
        elif isinstance(x, (list, tuple)):
            out.append('[')
            for i, val in enumerate(x):
                if i:
                    out.append(',')
                w(val)
            out.append(']')
        else:
            raise TypeError('not JSON: %r' % (x,))
    w(v)
    return ''.join(out)


def canon(text):
    """The same JSON value always as the same text (escapes normalized,
    key order and number text kept): for comparing outputs and payloads."""
    return dumps(loads(text))


# ---- run-time values ----

class Json:
    """A value of type json."""
    __slots__ = ('tree',)

    def __init__(self, tree):
        self.tree = tree


class Closure:
    """A value of type fn: a function (named or lambda) and what it captured."""
    __slots__ = ('func', 'outer')

    def __init__(self, func, outer):
        self.func = func
        self.outer = outer


class NoValue:
    pass


NOVAL = NoValue()


class Trap(Exception):
    def __init__(self, msg):
        super().__init__(msg)
        self.msg = msg


class Unspecified(Exception):
    """docs/ir.md does not say what this gives."""


class _Return(Exception):
    def __init__(self, value):
        self.value = value


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class Func:
    def __init__(self, node, name, parent, is_lambda):
        self.node = node
        self.name = name
        self.parent = parent  # the enclosing named function's name, or None
        self.is_lambda = is_lambda
        self.params = []
        for p in node.get('params') or []:
            if isinstance(p, str):
                self.params.append((p, 'i64'))
            else:
                self.params.append((p.get('name'), p.get('type') or 'i64'))
        self.body = node.get('body')


class Entry:
    """What a function sees of one enclosing function: `top` holds that
    function's parameters and top-level variables (what nested functions
    read), `visible` everything visible where a lambda was made (what the
    lambda reads). Values are copies: captures are by value."""
    __slots__ = ('fname', 'top', 'visible')

    def __init__(self, fname, top, visible):
        self.fname = fname
        self.top = top
        self.visible = visible


class Frame:
    __slots__ = ('func', 'scopes', 'outer', 'tag')

    def __init__(self, func, outer, tag):
        self.func = func
        self.scopes = [{}]
        self.outer = outer
        self.tag = tag  # the name other functions know this frame's function by

    def lookup(self, name):
        for s in reversed(self.scopes):
            if name in s:
                return s[name]
        for e in self.outer:
            if name in e.visible:
                return e.visible[name]
        raise RuntimeError('ref: unknown variable %r (the checker should have refused this)' % name)

    def assign(self, name, value):
        for s in reversed(self.scopes):
            if name in s:
                s[name] = value
                return
        raise RuntimeError('ref: set of %r, not a variable of this function' % name)

    def flatten(self):
        d = {}
        for s in self.scopes:
            d.update(s)
        return d


def kind(v):
    if isinstance(v, JObj):
        return 'an object'
    if isinstance(v, list):
        return 'an array'
    if isinstance(v, str):
        return 'a string'
    if isinstance(v, RawNum):
        return 'a number'
    raise Unspecified('the trap message for a JSON %s' % dumps(v))


class Program:
    def __init__(self, prog):
        self.funcs = {}
        for f in prog.get('functions') or []:
            fn = Func(f, f.get('name'), f.get('parent'), False)
            self.funcs[fn.name] = fn
        self.lambdas = {}
        self.entry = prog.get('entry') or 'main'


class Invocation:
    def __init__(self, program, input_text, ctx_pairs):
        self.p = program
        self.input_text = input_text
        self.input = loads(input_text)
        self.ctx = dict(ctx_pairs)  # insertion order: the report's order
        self.messages = []
        self.effects = 0
        self.depth = 0

    # -- calls --

    def call(self, func, args, outer):
        if len(args) != len(func.params):
            raise RuntimeError('ref: %s takes %d arguments, got %d' % (func.name, len(func.params), len(args)))
        self.depth += 1
        if self.depth > 200:
            # generated recursion is bounded far below this; the native limit is not documented
            raise Unspecified('calls nested deeper than the reference evaluator follows')
        frame = Frame(func, outer, func.name)
        for (pname, _), a in zip(func.params, args):
            frame.scopes[0][pname] = a
        try:
            self.block(frame, func.body, new_scope=False)
            result = NOVAL
        except _Return as r:
            result = r.value
        self.depth -= 1
        return result

    def outer_for(self, frame, target):
        """What `target` (a named function) receives, called or made into a
        fn value from `frame`: nothing for a top-level function; for a nested
        one, the parameters and top-level variables of the functions it is
        nested in, as `frame` has them now (or received them)."""
        if target.parent is None:
            return []
        if frame.tag == target.parent:
            top = dict(frame.scopes[0])
            return [Entry(target.parent, top, top)] + frame.outer
        for i, e in enumerate(frame.outer):
            if e.fname == target.parent:
                return [Entry(e.fname, e.top, e.top)] + frame.outer[i + 1:]
        raise RuntimeError('ref: %s is not visible from %s' % (target.name, frame.tag))

    def function(self, name):
        f = self.p.funcs.get(name)
        if f is None:
            raise RuntimeError('ref: no function %r' % name)
        return f

    # -- statements --

    def block(self, frame, stmts, new_scope=True):
        if new_scope:
            frame.scopes.append({})
        try:
            for s in stmts:
                self.stmt(frame, s)
        finally:
            if new_scope:
                frame.scopes.pop()

    def stmt(self, frame, s):
        op = s.get('op')
        if op == 'let':
            v = self.value(frame, s.get('expr'))
            frame.scopes[-1][s.get('name')] = v
        elif op == 'set':
            v = self.value(frame, s.get('expr'))
            frame.assign(s.get('name'), v)
        elif op == 'expr':
            self.eval(frame, s.get('expr'))
        elif op == 'return':
            e = s.get('expr')
            raise _Return(NOVAL if e is None else self.value(frame, e))
        elif op == 'if':
            if self.i64(frame, s.get('cond')) != 0:
                self.block(frame, s.get('then'))
            else:
                self.block(frame, s.get('else') or [])
        elif op == 'while':
            while self.i64(frame, s.get('cond')) != 0:
                try:
                    self.block(frame, s.get('body'))
                except _Break:
                    break
                except _Continue:
                    continue
        elif op == 'break':
            raise _Break()
        elif op == 'continue':
            raise _Continue()
        elif op == 'trap':
            raise Trap(s.get('message'))
        else:
            raise RuntimeError('ref: unknown statement %r' % op)

    # -- expressions --

    def value(self, frame, e):
        v = self.eval(frame, e)
        if v is NOVAL:
            raise RuntimeError('ref: %r gives no value' % e.get('op'))
        return v

    def i64(self, frame, e):
        v = self.value(frame, e)
        if not isinstance(v, int):
            raise RuntimeError('ref: %r is not an i64' % e.get('op'))
        return v

    def eval(self, frame, e):
        op = e.get('op')
        m = getattr(self, 'op_' + op, None)
        if m is None:
            raise RuntimeError('ref: unknown expression %r' % op)
        return m(frame, e)

    def op_lit_i64(self, frame, e):
        v = e.get('value')
        return int(v.text if isinstance(v, RawNum) else v)

    def op_lit_str(self, frame, e):
        return e.get('value')

    def op_lit_json(self, frame, e):
        return Json(e.get('value'))

    def op_var(self, frame, e):
        return frame.lookup(e.get('name'))

    def _ab(self, frame, e):
        a = self.i64(frame, e.get('a'))
        b = self.i64(frame, e.get('b'))
        return a, b

    def op_add(self, frame, e):
        a, b = self._ab(frame, e)
        return wrap(a + b)

    def op_sub(self, frame, e):
        a, b = self._ab(frame, e)
        return wrap(a - b)

    def op_mul(self, frame, e):
        a, b = self._ab(frame, e)
        return wrap(a * b)

    @staticmethod
    def _quot(a, b):
        q = abs(a) // abs(b)
        return q if (a < 0) == (b < 0) else -q

    def op_div(self, frame, e):
        a, b = self._ab(frame, e)
        if b == 0:
            raise Trap('integer division by zero')
        if a == INT64_MIN and b == -1:
            raise Trap('integer overflow')
        return self._quot(a, b)

    def op_rem(self, frame, e):
        a, b = self._ab(frame, e)
        if b == 0:
            raise Trap('integer division by zero')
        return wrap(a - b * self._quot(a, b))

    def op_band(self, frame, e):
        a, b = self._ab(frame, e)
        return a & b

    def op_bor(self, frame, e):
        a, b = self._ab(frame, e)
        return a | b

    def op_bxor(self, frame, e):
        a, b = self._ab(frame, e)
        return a ^ b

    def op_shl(self, frame, e):
        a, b = self._ab(frame, e)
        return wrap(a << (b & 63))

    def op_shr(self, frame, e):
        a, b = self._ab(frame, e)
        return a >> (b & 63)

    def op_neg(self, frame, e):
        return wrap(-self.i64(frame, e.get('a')))

    def _cmp(self, frame, e):
        a = self.value(frame, e.get('a'))
        b = self.value(frame, e.get('b'))
        return a, b

    def op_eq(self, frame, e):
        a, b = self._cmp(frame, e)
        return int(a == b)

    def op_ne(self, frame, e):
        a, b = self._cmp(frame, e)
        return int(a != b)

    def op_lt(self, frame, e):
        a, b = self._ab(frame, e)
        return int(a < b)

    def op_le(self, frame, e):
        a, b = self._ab(frame, e)
        return int(a <= b)

    def op_gt(self, frame, e):
        a, b = self._ab(frame, e)
        return int(a > b)

    def op_ge(self, frame, e):
        a, b = self._ab(frame, e)
        return int(a >= b)

    def op_and(self, frame, e):
        if self.i64(frame, e.get('a')) == 0:
            return 0
        return int(self.i64(frame, e.get('b')) != 0)

    def op_or(self, frame, e):
        if self.i64(frame, e.get('a')) != 0:
            return 1
        return int(self.i64(frame, e.get('b')) != 0)

    def op_not(self, frame, e):
        return int(self.i64(frame, e.get('a')) == 0)

    @staticmethod
    def text_of(v):
        if isinstance(v, int):
            return str(v)
        if isinstance(v, str):
            return v
        if isinstance(v, Json):
            return dumps(v.tree)
        raise RuntimeError('ref: no text for %r' % (v,))

    def op_concat(self, frame, e):
        return ''.join(self.text_of(self.value(frame, p)) for p in e.get('parts'))

    def op_len(self, frame, e):
        v = self.value(frame, e.get('a'))
        if isinstance(v, str):
            return len(v.encode('utf-8'))
        if isinstance(v.tree, list) and not isinstance(v.tree, JObj):
            return len(v.tree)
        raise Trap('len: the JSON value is %s, not an array' % kind(v.tree))

    def template(self, frame, t):
        if isinstance(t, JObj):
            if t.has('op'):
                v = self.value(frame, t)
                if isinstance(v, int):
                    return RawNum(str(v))
                if isinstance(v, str):
                    return v
                if isinstance(v, Json):
                    return v.tree
                raise RuntimeError('ref: a fn value in a template')
            return JObj((k, self.template(frame, x)) for k, x in t)
        if isinstance(t, list):
            return [self.template(frame, x) for x in t]
        return t

    def op_json(self, frame, e):
        return Json(self.template(frame, e.get('value')))

    def op_input(self, frame, e):
        return Json(self.input)

    def _get(self, frame, e, opname):
        cur = self.value(frame, e.get('from')).tree
        shown = '$'
        for step in e.get('path'):
            if isinstance(step, str):
                if not IDENT.match(step):
                    raise Unspecified('how a get_* message shows the key %r' % step)
                if not isinstance(cur, JObj):
                    raise Trap('%s: %s is %s, not an object' % (opname, shown, kind(cur)))
                shown += '.' + step
                if not cur.has(step):
                    raise Trap('%s: %s: not found' % (opname, shown))
                cur = cur.get(step)
            else:
                i = int(step.text if isinstance(step, RawNum) else step)
                if not isinstance(cur, list) or isinstance(cur, JObj):
                    raise Trap('%s: %s is %s, not an array' % (opname, shown, kind(cur)))
                shown += '[%d]' % i
                if i >= len(cur):
                    raise Trap('%s: %s: not found' % (opname, shown))
                cur = cur[i]
        return cur, shown

    def op_get_i64(self, frame, e):
        cur, shown = self._get(frame, e, 'get_i64')
        if not isinstance(cur, RawNum):
            raise Trap('get_i64: %s is %s, not a number' % (shown, kind(cur)))
        t = cur.text
        if INT_TEXT.match(t):
            v = int(t)
            if INT64_MIN <= v <= INT64_MAX:
                return v
            raise Trap('get_i64: %s is not an integer in the i64 range' % shown)
        if 'e' in t or 'E' in t or re.search(r'\.0*\Z', t):
            raise Unspecified('whether the number %s is an integer for get_i64' % t)
        raise Trap('get_i64: %s is not an integer in the i64 range' % shown)

    def op_get_str(self, frame, e):
        cur, shown = self._get(frame, e, 'get_str')
        if not isinstance(cur, str):
            raise Trap('get_str: %s is %s, not a string' % (shown, kind(cur)))
        return cur

    def op_get_json(self, frame, e):
        cur, _ = self._get(frame, e, 'get_json')
        return Json(cur)

    def op_call(self, frame, e):
        f = self.function(e.get('fn'))
        args = [self.value(frame, a) for a in e.get('args') or []]
        return self.call(f, args, self.outer_for(frame, f))

    def op_fn(self, frame, e):
        f = self.function(e.get('name'))
        return Closure(f, self.outer_for(frame, f))

    def op_lambda(self, frame, e):
        key = id(e)
        f = self.p.lambdas.get(key)
        if f is None:
            f = Func(e, 'lambda@%x' % key, None, True)
            self.p.lambdas[key] = f
        visible = frame.flatten()
        return Closure(f, [Entry(frame.tag, dict(frame.scopes[0]), visible)] + frame.outer)

    def op_call_ref(self, frame, e):
        c = self.value(frame, e.get('fn'))
        args = [self.value(frame, a) for a in e.get('args') or []]
        return self.call(c.func, args, c.outer)

    def op_ctx_get_i64(self, frame, e):
        key = e.get('key')
        self.effects += 1
        if key not in self.ctx:
            raise Trap("context key '%s' is not set" % key)
        return self.ctx[key]

    def op_ctx_set_i64(self, frame, e):
        v = self.i64(frame, e.get('value'))
        self.effects += 1
        self.ctx[e.get('key')] = v
        return NOVAL

    def op_msg_send(self, frame, e):
        v = self.value(frame, e.get('payload'))
        if isinstance(v, int):
            text = str(v)
        elif isinstance(v, str):
            text = dump_str(v)
        else:
            text = dumps(v.tree)
        self.effects += 1
        self.messages.append((e.get('topic'), text))
        return NOVAL

    def op_sleep_ms(self, frame, e):
        self.i64(frame, e.get('ms'))
        self.effects += 1
        return NOVAL

    # -- the invocation --

    def bind_args(self, func):
        args_node = self.input.get('args') if isinstance(self.input, JObj) else None
        out = []
        for i, (pname, ptype) in enumerate(func.params):
            if isinstance(args_node, JObj):
                present, v = args_node.has(pname), args_node.get(pname)
            elif isinstance(args_node, list):
                present, v = i < len(args_node), (args_node[i] if i < len(args_node) else None)
            else:
                present, v = False, None
            if not present:
                raise Trap("argument '%s' is missing" % pname)
            if ptype == 'i64':
                if not (isinstance(v, RawNum) and INT_TEXT.match(v.text)
                        and INT64_MIN <= int(v.text) <= INT64_MAX):
                    raise Trap("argument '%s' must be an integer in the i64 range" % pname)
                out.append(int(v.text))
            elif ptype == 'str':
                if not isinstance(v, str):
                    raise Trap("argument '%s' must be a string" % pname)
                out.append(v)
            elif ptype == 'json':
                out.append(Json(v))
            else:
                raise Unspecified('a fn argument from an input')
        return out

    def run(self):
        name = self.input.get('fn') if isinstance(self.input, JObj) else None
        name = name or self.p.entry
        func = self.function(name)
        try:
            args = self.bind_args(func)
            v = self.call(func, args, [])
        except Trap as t:
            return self.report('trap', None, t.msg)
        if isinstance(v, Json):
            out = dumps(v.tree)
        elif isinstance(v, int):
            out = '{"result":%d}' % v
        elif isinstance(v, str):
            out = '{"result":%s}' % dump_str(v)
        elif v is NOVAL:
            out = '{"result":null}'
        else:
            raise Unspecified('the captures of a fn value in an output')
        return self.report('done', out, None)

    def report(self, status, output, trap):
        return {'status': status, 'output': output, 'trap': trap,
                'steps': self.effects + 1,
                'ctx': [[k, v] for k, v in self.ctx.items()],
                'messages': [[t, p] for t, p in self.messages]}


def evaluate(program, input_text, ctx_pairs):
    """The expected report of one invocation, or {'unspecified': why}."""
    if not isinstance(program, Program):
        program = Program(program)
    inv = Invocation(program, input_text, ctx_pairs)
    try:
        return inv.run()
    except Unspecified as u:
        return {'unspecified': str(u)}


def main(argv):
    sys.setrecursionlimit(20000)
    import argparse
    ap = argparse.ArgumentParser(description='evaluate one invocation of a wfp IR program')
    ap.add_argument('program')
    ap.add_argument('--input', default='{}')
    ap.add_argument('--ctx', action='append', default=[], metavar='KEY=I64')
    a = ap.parse_args(argv)
    with open(a.program, encoding='utf-8') as f:
        prog = loads(f.read())
    ctx = []
    for kv in a.ctx:
        k, _, v = kv.partition('=')
        ctx.append((k, int(v)))
    r = evaluate(prog, a.input, ctx)
    print(json.dumps(r, ensure_ascii=False))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
