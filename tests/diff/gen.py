#!/usr/bin/env python3
"""gen.py: random, valid wfp IR programs for the differential test.

Deterministic from a seed: generate(seed) gives the same program and the
same invocations on every machine. A program holds many test functions
(t0, t1, ...) so that one wfp-aot run serves many invocations; helpers
(h0, h1, ...) are called, passed and returned by them.

What it covers: i64 arithmetic with edge values, comparisons, logic, if
and while with break/continue (every loop is bounded by a counter), let/set
with block scoping and shadowing, str and json values, templates, get_* on
JSON whose shape is known (and, now and then, on paths that are not there),
direct calls, bounded recursion (self and mutual), nested functions reading
their parents' variables, lambdas capturing by value, fn values passed to,
stored in and returned from functions, effects everywhere (loops, branches,
callees, lambdas, the right operand of and/or, templates), and traps.

    python3 gen.py SEED [-o PROGRAM.json]   # writes the program, prints the invocations
"""
import json
import random
import sys

from ref import RawNum, JObj, dumps, INT64_MIN, INT64_MAX

I64, STR, JSON = 'i64', 'str', 'json'
SIG_II = ('fn', (I64,), I64)
SIG_III = ('fn', (I64, I64), I64)
SIG_SS = ('fn', (STR,), STR)
SIGS = [SIG_II, SIG_III, SIG_SS]

# The most a function value may cost when called (lambdas and functions
# made into fn values are generated within it): call_ref sites are costed
# with it without knowing which function they reach.
SIGCOST = 40

# Switches for constructs that found a disagreement with docs/ir.md: the
# fixed-seed ctest turns them off so it stays green while the bug is open
# (tests/diff/found/ has the reproductions); a campaign (run.py) keeps them
# on unless told --fixed-only.
FIXED_SEED_EXCLUSIONS = set()

# Context keys: given on every invocation, sometimes set by the program,
# and one that never exists (a trap).
CTX_GIVEN = ['a', 'b', 'big', 'z']
CTX_SET = ['acc', 'out', 'a', 'ü k']
CTX_MISSING = ['nope']
TOPICS = ['t', 'log', 'ev', 'ü/topic', '']

STR_POOL = ['', 'a', 'hé', 'x"y', 'back\\slash', 'tab\tnl\n', '€uro', '😀', 'abc', 'ünï',
            'ctl\u0001', 'sp ace', '{"op":1}', '0', '-12']
KEYS = ['k', 'n', 'id', 'name', 'tags', 'v', 'w', 'x1', '_p', '$q']

EDGE_I64 = [0, 1, -1, 2, 3, 7, -7, 10, 63, 64, 65, 127, -128, 255, 1 << 31, 1 << 32, -(1 << 32),
            INT64_MIN, INT64_MAX, INT64_MIN + 1, INT64_MAX - 1, 1 << 53, (1 << 53) + 1]


def is_fn(t):
    return isinstance(t, tuple)


def tname(t):
    return 'fn' if is_fn(t) else t


class Var:
    __slots__ = ('name', 't', 'shape', 'settable', 'counter')

    def __init__(self, name, t, shape=None, settable=True, counter=False):
        self.name, self.t, self.shape = name, t, shape
        self.settable, self.counter = settable, counter

    def readonly(self):
        return Var(self.name, self.t, self.shape, False, self.counter)


class FInfo:
    """What callers need to know of a function."""

    def __init__(self, name, params, ret, parent=None):
        self.name = name
        self.params = params          # [(name, type)]
        self.ret = ret                # a type, or None: no value
        self.parent = parent
        self.cost = 1
        self.partial = False          # returns a value on some paths only
        self.bounded = {}             # argument index -> mask keeping recursion bounded

    def sig(self):
        return ('fn', tuple(t for _, t in self.params), self.ret)


class FCtx:
    """The function (or lambda) being generated."""

    def __init__(self, g, tag, ret, captured, callable_fns, budget, lambda_depth=0):
        self.g = g
        self.tag = tag
        self.ret = ret
        self.scopes = [[]]
        self.captured = captured      # read-only Vars of enclosing functions, nearest first
        self.callable = callable_fns  # FInfos that may be called from here
        self.budget = budget
        self.cost = 0
        self.mult = 1
        self.loop = 0
        self.lambda_depth = lambda_depth
        # once nested functions exist, a new top-level name could change what
        # their reads resolve to (they read every top-level variable by name)
        self.fresh_top = False
        # send the values of the variables at the end of blocks (test and
        # nested functions, whose budgets leave room for the effects)
        self.observe = False

    def visible(self):
        d = {}
        for v in reversed(self.captured):
            d[v.name] = v
        for s in self.scopes:
            for v in s:
                d[v.name] = v
        return d

    def vars_of(self, t):
        return [v for v in self.visible().values() if v.t == t]

    def settable(self):
        own = {}
        for s in self.scopes:
            for v in s:
                own[v.name] = v
        vis = self.visible()
        return [v for v in own.values() if v.settable and not v.counter and vis.get(v.name) is v]

    def declare(self, v):
        self.scopes[-1].append(v)

    def afford(self, c):
        return self.cost + self.mult * c <= self.budget

    def spend(self, c):
        self.cost += self.mult * c


class Gen:
    def __init__(self, seed, exclude=()):
        self.r = random.Random(seed)
        self.seed = seed
        self.exclude = set(exclude)
        self.n = 0
        self.functions = []           # IR function objects, in file order
        self.infos = {}               # name -> FInfo
        self.helpers = []             # FInfos of top-level helpers
        self.invocations = []

    # ---- small helpers ----

    def fresh(self, prefix):
        self.n += 1
        return '%s%d' % (prefix, self.n)

    def chance(self, p):
        return self.r.random() < p

    def pick(self, xs):
        return self.r.choice(xs)

    def wpick(self, pairs):
        pairs = [(w, x) for w, x in pairs if w > 0]
        tot = sum(w for w, _ in pairs)
        x = self.r.random() * tot
        for w, v in pairs:
            x -= w
            if x <= 0:
                return v
        return pairs[-1][1]

    def rand_i64(self):
        k = self.r.random()
        if k < 0.5:
            return self.pick(EDGE_I64)
        if k < 0.8:
            return self.r.randint(-100, 100)
        return self.r.randint(INT64_MIN, INT64_MAX)

    def lit(self, v):
        # both forms are exact; beyond 2^53 only the string is safe in JSON tools
        if abs(v) > (1 << 53) or self.chance(0.1):
            return {'op': 'lit_i64', 'value': str(v)}
        return {'op': 'lit_i64', 'value': v}

    # ---- JSON data and shapes ----
    # shape: ('int',) ('bigint',) ('frac',) ('exp',) ('str',) ('bool',) ('null',)
    #        ('arr', [shapes]) ('obj', [(key, shape)]); None: unknown

    def rand_json(self, d, op_key=False):
        k = self.r.random()
        if d <= 0 or k < 0.55:
            s = self.r.random()
            if s < 0.3:
                v = self.rand_i64() if self.chance(0.5) else self.r.randint(-50, 50)
                return RawNum(str(v)), ('int',)
            if s < 0.36:
                v = self.pick([INT64_MAX + 1, INT64_MIN - 1, 12345678901234567890, -(10 ** 20)])
                return RawNum(str(v)), ('bigint',)
            if s < 0.43:
                return RawNum(self.pick(['2.50', '0.25', '-1.75', '3.14159', '1.5'])), ('frac',)
            if s < 0.45:
                return RawNum(self.pick(['1e3', '2.5E-3', '-4e+2'])), ('exp',)
            if s < 0.75:
                return self.pick(STR_POOL), ('str',)
            if s < 0.85:
                return self.chance(0.5), ('bool',)
            return None, ('null',)
        if k < 0.75:
            items = [self.rand_json(d - 1, op_key) for _ in range(self.r.randint(0, 4))]
            return [v for v, _ in items], ('arr', [s for _, s in items])
        keys = self.r.sample(KEYS, self.r.randint(0, 4))
        if op_key and self.chance(0.15):
            keys.append('op')  # literal data may have an "op" key (lit_json only)
        obj = JObj()
        shapes = []
        for key in keys:
            v, s = self.rand_json(d - 1, op_key)
            obj.append((key, v))
            shapes.append((key, s))
        return obj, ('obj', shapes)

    def paths(self, shape, prefix=()):
        """Every path into a known shape, with the shape it leads to."""
        out = [(prefix, shape)]
        if shape is None:
            return out
        if shape[0] == 'arr':
            for i, s in enumerate(shape[1]):
                out += self.paths(s, prefix + (i,))
        elif shape[0] == 'obj':
            for k, s in shape[1]:
                out += self.paths(s, prefix + (k,))
        return out

    def gen_path(self, shape, want):
        """A path for get_<want>: mostly one that leads to a value of that
        kind; sometimes one that is not there or leads to another kind, for
        the documented traps (never into true/false/null, whose wording the
        docs leave open)."""
        good_kind = {'i64': ('int',), 'str': ('str',), 'json': None}[want]
        all_paths = self.paths(shape)
        documented = ('int', 'bigint', 'frac', 'str', 'arr', 'obj')
        if shape is None:
            # unknown shape: now and then a short random path, the reference decides
            if self.chance(0.9):
                return []
            return [self.pick(KEYS) if self.chance(0.6) else self.r.randint(0, 2)
                    for _ in range(self.r.randint(0, 2))]
        good = [p for p, s in all_paths if s is not None and
                (good_kind is None or s[0] in good_kind)]
        # a program ends at its first trap: bad paths must be rare to leave the rest of it tested
        if good and self.chance(0.97):
            return list(self.pick(good))
        k = self.r.random()
        if k < 0.4:
            # a key or index that is not there
            conts = [(p, s) for p, s in all_paths if s is not None and s[0] in ('obj', 'arr')]
            if conts:
                p, s = self.pick(conts)
                if s[0] == 'obj':
                    return list(p) + ['missing']
                return list(p) + [len(s[1]) + self.r.randint(0, 3)]
        if k < 0.7 and want != 'json':
            # a value of another (documented) kind
            other = [p for p, s in all_paths if s is not None and s[0] in documented and
                     s[0] not in good_kind]
            if other:
                return list(self.pick(other))
        # a step into a value that is not an object / array
        leaves = [(p, s) for p, s in all_paths if s is not None and s[0] in documented]
        if leaves:
            p, s = self.pick(leaves)
            if s[0] == 'obj':
                return list(p) + [0]
            if s[0] == 'arr':
                return list(p) + ['k']
            return list(p) + [self.pick(['k', 0])]
        return list(self.pick(good)) if good else []

    @staticmethod
    def follow(shape, path):
        for step in path:
            if shape is None:
                return None
            if isinstance(step, int) and shape[0] == 'arr' and step < len(shape[1]):
                shape = shape[1][step]
            elif isinstance(step, str) and shape[0] == 'obj':
                d = dict(shape[1])
                if step not in d:
                    return None
                shape = d[step]
            else:
                return None
        return shape

    # ---- expressions ----

    def value(self, c, t, d):
        if t == I64:
            return self.gen_i64(c, d)
        if t == STR:
            return self.gen_str(c, d)
        if t == JSON:
            return self.gen_json(c, d)[0]
        return self.gen_fn(c, t, d)

    def var_of(self, c, t):
        vs = c.vars_of(t)
        return self.pick(vs) if vs else None

    def calls_returning(self, c, t):
        return [f for f in c.callable if f.ret == t and not f.partial and c.afford(f.cost)]

    def gen_call(self, c, f, d):
        c.spend(f.cost)
        args = []
        for i, (_, pt) in enumerate(f.params):
            a = self.value(c, pt, d - 1)
            if i in f.bounded:
                # keeps the recursion depth within the mask
                a = {'op': 'band', 'a': a, 'b': self.lit(f.bounded[i])}
            args.append(a)
        node = {'op': 'call', 'fn': f.name, 'args': args}
        if not args and self.chance(0.3):
            del node['args']
        return node

    def gen_call_ref(self, c, sig, d):
        c.spend(SIGCOST)
        fe = self.gen_fn(c, sig, d - 1)
        return {'op': 'call_ref', 'fn': fe, 'args': [self.value(c, pt, d - 1) for pt in sig[1]]}

    def ctx_key(self):
        return self.wpick([(96, self.pick(CTX_GIVEN)), (3, self.pick(CTX_SET)), (1, self.pick(CTX_MISSING))])

    def cond(self, c, d):
        """An i64 that is non-zero now and then."""
        k = self.r.random()
        v = self.var_of(c, I64)
        if k < 0.45 and v:
            return {'op': self.pick(['lt', 'le', 'gt', 'ge', 'eq', 'ne']),
                    'a': {'op': 'band', 'a': {'op': 'var', 'name': v.name}, 'b': self.lit(self.pick([1, 3, 7]))},
                    'b': self.lit(self.r.randint(0, 3))}
        return self.gen_i64(c, d)

    def gen_i64(self, c, d):
        if d <= 0:
            v = self.var_of(c, I64)
            if v and self.chance(0.6):
                return {'op': 'var', 'name': v.name}
            return self.lit(self.rand_i64())
        calls = self.calls_returning(c, I64)
        strs = c.vars_of(STR)
        jsons = [v for v in c.vars_of(JSON)]
        fnv = [s for s in (SIG_II, SIG_III) if c.afford(SIGCOST)]
        choice = self.wpick([
            (10, 'lit'), (14, 'var'), (18, 'arith'), (6, 'div'), (4, 'shift'), (3, 'neg'),
            (7, 'cmp'), (3, 'streq'), (5, 'logic'), (2, 'not'), (3, 'len'),
            (6, 'get'), (9 if calls else 0, 'call'), (5 if fnv else 0, 'call_ref'),
            (6 if c.afford(1) else 0, 'ctx_get'),
        ])
        if choice == 'lit':
            return self.lit(self.rand_i64())
        if choice == 'var':
            v = self.var_of(c, I64)
            return {'op': 'var', 'name': v.name} if v else self.lit(self.rand_i64())
        if choice == 'arith':
            return {'op': self.pick(['add', 'sub', 'mul', 'band', 'bor', 'bxor']),
                    'a': self.gen_i64(c, d - 1), 'b': self.gen_i64(c, d - 1)}
        if choice == 'div':
            b = self.gen_i64(c, d - 1)
            if self.chance(0.75):
                b = {'op': 'bor', 'a': b, 'b': self.lit(1)}  # mostly non-zero, so not every program traps
            return {'op': self.pick(['div', 'rem']), 'a': self.gen_i64(c, d - 1), 'b': b}
        if choice == 'shift':
            b = self.lit(self.pick([0, 1, 5, 31, 32, 63, 64, 65, 127, -1, -63, 200])) \
                if self.chance(0.6) else self.gen_i64(c, d - 1)
            return {'op': self.pick(['shl', 'shr']), 'a': self.gen_i64(c, d - 1), 'b': b}
        if choice == 'neg':
            return {'op': 'neg', 'a': self.gen_i64(c, d - 1)}
        if choice == 'cmp':
            return {'op': self.pick(['eq', 'ne', 'lt', 'le', 'gt', 'ge']),
                    'a': self.gen_i64(c, d - 1), 'b': self.gen_i64(c, d - 1)}
        if choice == 'streq':
            return {'op': self.pick(['eq', 'ne']), 'a': self.gen_str(c, d - 1), 'b': self.gen_str(c, d - 1)}
        if choice == 'logic':
            # the right operand may suspend or trap: it must run only when needed
            a = self.cond(c, d - 1) if self.chance(0.6) else self.gen_i64(c, d - 1)
            if self.chance(0.5) and c.afford(1):
                c.spend(1)
                b = self.pick([{'op': 'ctx_get_i64', 'key': self.ctx_key()},
                               {'op': 'div', 'a': self.gen_i64(c, d - 1), 'b': self.gen_i64(c, 0)}])
            else:
                b = self.gen_i64(c, d - 1)
            return {'op': self.pick(['and', 'or']), 'a': a, 'b': b}
        if choice == 'not':
            return {'op': 'not', 'a': self.gen_i64(c, d - 1)}
        if choice == 'len':
            if self.chance(0.5) or not jsons:
                return {'op': 'len', 'a': self.gen_str(c, d - 1)}
            return {'op': 'len', 'a': self.json_array(c, d - 1)}
        if choice == 'get':
            je, shape = self.known_json(c, d - 1, 'int')
            path = self.gen_path(shape, 'i64')
            return {'op': 'get_i64', 'from': je, 'path': path}
        if choice == 'call':
            return self.gen_call(c, self.pick(calls), d)
        if choice == 'call_ref':
            return self.gen_call_ref(c, self.pick(fnv), d)
        c.spend(1)
        return {'op': 'ctx_get_i64', 'key': self.ctx_key()}

    def known_json(self, c, d, leaf):
        """A json expression whose shape is known and holds a `leaf`
        (tries a few, then falls back on a literal)."""
        for _ in range(4):
            je, shape = self.gen_json(c, d)
            if shape is not None and any(s is not None and s[0] == leaf for _, s in self.paths(shape)):
                return je, shape
        for _ in range(20):
            v, shape = self.rand_json(3)
            if any(s is not None and s[0] == leaf for _, s in self.paths(shape)):
                break
        return {'op': 'lit_json', 'value': v}, shape

    def json_array(self, c, d):
        """A json expression that is (most likely) an array."""
        je, shape = self.known_json(c, d, 'arr')
        arrs = [p for p, s in self.paths(shape) if s is not None and s[0] == 'arr']
        if arrs and self.chance(0.9):
            p = list(self.pick(arrs))
            if not p:
                return je
            return {'op': 'get_json', 'from': je, 'path': p}
        v, _ = self.rand_json(2)
        if not isinstance(v, list) or isinstance(v, JObj):
            v = [v]
        return {'op': 'lit_json', 'value': v}

    def gen_str(self, c, d):
        if d <= 0:
            v = self.var_of(c, STR)
            if v and self.chance(0.6):
                return {'op': 'var', 'name': v.name}
            return {'op': 'lit_str', 'value': self.pick(STR_POOL)}
        calls = self.calls_returning(c, STR)
        choice = self.wpick([(10, 'lit'), (12, 'var'), (14, 'concat'), (6, 'get'),
                             (7 if calls else 0, 'call'),
                             (4 if c.afford(SIGCOST) else 0, 'call_ref')])
        if choice == 'lit':
            return {'op': 'lit_str', 'value': self.pick(STR_POOL)}
        if choice == 'var':
            v = self.var_of(c, STR)
            return {'op': 'var', 'name': v.name} if v else {'op': 'lit_str', 'value': self.pick(STR_POOL)}
        if choice == 'concat':
            parts = []
            for _ in range(self.r.randint(0, 4)):
                t = self.wpick([(4, STR), (3, I64), (2, JSON)])
                parts.append(self.value(c, t, d - 1))
            return {'op': 'concat', 'parts': parts}
        if choice == 'get':
            je, shape = self.known_json(c, d - 1, 'str')
            return {'op': 'get_str', 'from': je, 'path': self.gen_path(shape, 'str')}
        if choice == 'call':
            return self.gen_call(c, self.pick(calls), d)
        return self.gen_call_ref(c, SIG_SS, d)

    def gen_json(self, c, d):
        """A json expression and the shape of its value (None: unknown)."""
        if d <= 0:
            vs = c.vars_of(JSON)
            if vs and self.chance(0.6):
                v = self.pick(vs)
                return {'op': 'var', 'name': v.name}, v.shape
            v, s = self.rand_json(2, op_key=True)
            return {'op': 'lit_json', 'value': v}, s
        calls = self.calls_returning(c, JSON)
        choice = self.wpick([(8, 'lit'), (12, 'var'), (12, 'template'), (4, 'get'),
                             (1, 'input'), (5 if calls else 0, 'call')])
        if choice == 'var':
            vs = c.vars_of(JSON)
            if vs:
                v = self.pick(vs)
                return {'op': 'var', 'name': v.name}, v.shape
            choice = 'lit'
        if choice == 'lit':
            v, s = self.rand_json(3, op_key=True)
            return {'op': 'lit_json', 'value': v}, s
        if choice == 'template':
            t, s = self.gen_template(c, d - 1, top=True)
            return {'op': 'json', 'value': t}, s
        if choice == 'get':
            je, shape = self.gen_json(c, d - 1)
            path = self.gen_path(shape, 'json')
            return {'op': 'get_json', 'from': je, 'path': path}, self.follow(shape, path)
        if choice == 'input':
            return {'op': 'input'}, c.g.input_shape
        f = self.pick(calls)
        return self.gen_call(c, f, d), None

    def gen_template(self, c, d, top=False):
        k = self.r.random()
        if top and k < 0.15 or d <= 0 and k < 0.5:
            t = self.wpick([(4, I64), (3, STR), (2, JSON)])
            if t == JSON:
                e, s = self.gen_json(c, d)
                return e, s
            return self.value(c, t, d), ('int',) if t == I64 else ('str',)
        if d <= 0 or k < 0.3:
            v, s = self.rand_json(1)
            return v, s
        if k < 0.45:
            items = [self.gen_template(c, d - 1) for _ in range(self.r.randint(0, 3))]
            return [t for t, _ in items], ('arr', [s for _, s in items])
        obj = JObj()
        shapes = []
        for key in self.r.sample(KEYS, self.r.randint(1, 4)):
            t, s = self.gen_template(c, d - 1)
            obj.append((key, t))
            shapes.append((key, s))
        return obj, ('obj', shapes)

    def gen_fn(self, c, sig, d):
        vs = c.vars_of(sig)
        # a function whose recursion is bounded by its callers' masks is never made a value
        refs = [f for f in c.callable if f.sig() == sig and not f.partial and not f.bounded
                and f.cost <= SIGCOST]
        makers = self.calls_returning(c, sig)
        choice = self.wpick([(8 if vs else 0, 'var'), (5 if refs else 0, 'ref'),
                             (8 if c.lambda_depth < 2 else 1, 'lambda'),
                             (4 if makers and d > 0 else 0, 'call')])
        if choice == 'var':
            return {'op': 'var', 'name': self.pick(vs).name}
        if choice == 'ref':
            return {'op': 'fn', 'name': self.pick(refs).name}
        if choice == 'call':
            return self.gen_call(c, self.pick(makers), d)
        return self.gen_lambda(c, sig, d)

    def gen_lambda(self, c, sig, d):
        captured = [v.readonly() for v in c.visible().values()]
        callable_fns = [f for f in c.callable if f.cost <= SIGCOST // 2]
        lc = FCtx(self, c.tag, sig[2], captured, callable_fns, SIGCOST - 2, c.lambda_depth + 1)
        params = []
        for pt in sig[1]:
            vis = lc.visible()
            if vis and self.chance(0.15):
                name = self.pick(sorted(vis))  # a parameter may shadow a captured name
                if name in [p for p, _ in params] or vis[name].counter:
                    name = self.fresh('p')
            else:
                name = self.fresh('p')
            params.append((name, pt))
            lc.declare(Var(name, pt))
        body = self.gen_body(lc, self.r.randint(0, 2), min(d, 2))
        node = {'op': 'lambda', 'params': [self.param_node(n, t) for n, t in params], 'body': body}
        if not params and self.chance(0.5):
            del node['params']
        return node

    def param_node(self, name, t):
        if t == I64 and self.chance(0.5):
            return name
        return {'name': name, 'type': tname(t)}

    # ---- statements ----

    def new_name(self, c, prefix='v'):
        """A fresh name, or now and then one that shadows a visible variable."""
        if self.chance(0.12) and not (c.fresh_top and len(c.scopes) == 1):
            here = {v.name for v in c.scopes[-1]}
            cands = [v.name for v in c.visible().values()
                     if not v.counter and v.name not in here]
            if cands:
                return self.pick(sorted(cands))
        return self.fresh(prefix)

    def gen_let(self, c, d, t=None):
        if t is None:
            t = self.wpick([(10, I64), (5, STR), (5, JSON), (2, SIG_II), (1, SIG_III), (1, SIG_SS)])
        name = self.new_name(c)
        if t == JSON:
            e, shape = self.gen_json(c, d)
            frozen = self.chance(0.6)
            v = Var(name, t, shape if frozen else None, settable=not frozen)
        else:
            e = self.value(c, t, d)
            v = Var(name, t)
        c.declare(v)
        return {'op': 'let', 'name': name, 'expr': e}

    def gen_effect_stmt(self, c, d):
        nov = [f for f in c.callable if f.ret is None and c.afford(f.cost)]
        vals = [f for f in c.callable if f.ret is not None and c.afford(f.cost)]
        k = self.wpick([(8, 'msg'), (5, 'set'), (2, 'sleep'), (4 if nov else 0, 'nov'),
                        (2 if vals else 0, 'val'), (1 if c.afford(SIGCOST) else 0, 'ref')])
        if k == 'msg':
            t = self.wpick([(4, I64), (3, STR), (3, JSON)])
            e = {'op': 'msg_send', 'topic': self.pick(TOPICS), 'payload': self.value(c, t, d)}
            c.spend(1)
        elif k == 'set':
            e = {'op': 'ctx_set_i64', 'key': self.pick(CTX_SET), 'value': self.gen_i64(c, d)}
            c.spend(1)
        elif k == 'sleep':
            # sleeps are real in wfp-host: 0 or negative (which means 0)
            e = {'op': 'sleep_ms', 'ms': self.lit(self.pick([0, 0, -5, INT64_MIN]))}
            c.spend(1)
        elif k == 'nov':
            e = self.gen_call(c, self.pick(nov), d)
        elif k == 'val':
            e = self.gen_call(c, self.pick(vals), d)
        else:
            e = self.gen_call_ref(c, self.pick(SIGS), d)
        return {'op': 'expr', 'expr': e}

    def gen_loop(self, c, d, depth):
        """A loop bounded by a counter that only its own increment sets;
        the increment comes first so that continue cannot skip it."""
        iname = self.fresh('i')
        n = self.r.randint(0, 5)
        form = self.r.random()
        out = []
        if form < 0.45:
            out.append({'op': 'let', 'name': iname, 'expr': self.lit(0)})
            cond = {'op': 'lt', 'a': {'op': 'var', 'name': iname}, 'b': self.lit(n)}
            head = [{'op': 'set', 'name': iname,
                     'expr': {'op': 'add', 'a': {'op': 'var', 'name': iname}, 'b': self.lit(1)}}]
        elif form < 0.75:
            out.append({'op': 'let', 'name': iname, 'expr': self.lit(0)})
            cond = self.lit(1)  # ends only through its break
            head = [{'op': 'set', 'name': iname,
                     'expr': {'op': 'add', 'a': {'op': 'var', 'name': iname}, 'b': self.lit(1)}},
                    {'op': 'if', 'cond': {'op': 'gt', 'a': {'op': 'var', 'name': iname}, 'b': self.lit(n)},
                     'then': [{'op': 'break'}]}]
        else:
            n = 7
            out.append({'op': 'let', 'name': iname,
                        'expr': {'op': 'band', 'a': self.gen_i64(c, 1), 'b': self.lit(n)}})
            cond = {'op': 'gt', 'a': {'op': 'var', 'name': iname}, 'b': self.lit(0)}
            head = [{'op': 'set', 'name': iname,
                     'expr': {'op': 'sub', 'a': {'op': 'var', 'name': iname}, 'b': self.lit(1)}}]
        c.declare(Var(iname, I64, counter=True))
        saved = c.mult
        c.mult *= max(n, 1) + 1
        c.loop += 1
        c.scopes.append([])
        jump = None
        if self.chance(0.5):
            # an early continue or break, before the body's first let (its
            # condition reads only what is visible at the body's start)
            jump = {'op': 'if', 'cond': self.cond(c, 1), 'then': [{'op': self.pick(['continue', 'continue', 'break'])}]}
        body = self.gen_stmts(c, self.r.randint(1, 4), d, depth + 1)
        if jump:
            lets = [i for i, st in enumerate(body) if st['op'] == 'let'] + [len(body)]
            body.insert(self.r.randint(0, lets[0]), jump)
        body = head + body
        c.scopes.pop()
        c.loop -= 1
        c.mult = saved
        out.append({'op': 'while', 'cond': cond, 'body': body})
        return out

    def gen_grow(self, c, d):
        """A value that doubles in a loop (tens of kilobytes), with an
        effect in between now and then: large live values across suspensions
        and growing memory."""
        name, iname = self.fresh('g'), self.fresh('i')
        n = self.r.randint(6, 13)
        t = self.pick([STR, JSON])
        if t == STR:
            init = {'op': 'lit_str', 'value': self.pick(STR_POOL[1:])}
            grow = {'op': 'concat', 'parts': [{'op': 'var', 'name': name}, {'op': 'var', 'name': iname},
                                              {'op': 'var', 'name': name}]}
        else:
            v, _ = self.rand_json(1)
            init = {'op': 'lit_json', 'value': [v]}
            grow = {'op': 'json', 'value': [{'op': 'var', 'name': name}, {'op': 'var', 'name': iname},
                                            {'op': 'var', 'name': name}]}
        body = [{'op': 'set', 'name': iname, 'expr': {'op': 'add', 'a': {'op': 'var', 'name': iname}, 'b': self.lit(1)}},
                {'op': 'set', 'name': name, 'expr': grow}]
        if self.chance(0.6) and c.afford(n):
            c.spend(n)
            body.insert(1, {'op': 'expr', 'expr': {'op': 'ctx_set_i64', 'key': 'out', 'value': {
                'op': 'len', 'a': {'op': 'var', 'name': name} if t == STR else
                {'op': 'concat', 'parts': [{'op': 'var', 'name': name}]}}}})
        out = [{'op': 'let', 'name': name, 'expr': init},
               {'op': 'let', 'name': iname, 'expr': self.lit(0)},
               {'op': 'while', 'cond': {'op': 'lt', 'a': {'op': 'var', 'name': iname}, 'b': self.lit(n)}, 'body': body}]
        c.declare(Var(name, t, None, settable=False))
        c.declare(Var(iname, I64, counter=True))
        if self.chance(0.7):
            c.spend(1)
            out.append({'op': 'expr', 'expr': {'op': 'msg_send', 'topic': 'len', 'payload': {
                'op': 'len', 'a': {'op': 'var', 'name': name} if t == STR else
                {'op': 'concat', 'parts': [{'op': 'var', 'name': name}]}}}})
        return out

    def gen_capture(self, c, d):
        """A fn value made, then a variable it read set, then the value
        called: captures are by value, so the call must see the old value."""
        xs = [v for v in c.settable() if v.t == I64]
        nested = [f for f in c.callable if f.parent is not None and f.sig() == SIG_II
                  and not f.bounded and f.cost <= SIGCOST]
        if not xs or not c.afford(SIGCOST + 1):
            return []
        x = self.pick(xs)
        fname = self.fresh('f')
        top = [v for v in xs if v in c.scopes[0]]
        if nested and top and self.chance(0.5):
            x = self.pick(top)  # a variable nested functions may read
            fe = {'op': 'fn', 'name': self.pick(nested).name}
        else:
            lam = self.gen_lambda(c, SIG_II, 1)
            p = lam['params'][0]
            pname = p if isinstance(p, str) else p['name']
            ret = lam['body'][-1]
            own = {pname} | {st['name'] for st in lam['body'] if st['op'] == 'let'}
            if x.name not in own:
                # the lambda's result reads x
                ret['expr'] = {'op': 'add', 'a': ret['expr'], 'b': {
                    'op': 'mul', 'a': {'op': 'var', 'name': x.name}, 'b': {'op': 'var', 'name': pname}}}
            fe = lam
        out = [{'op': 'let', 'name': fname, 'expr': fe},
               {'op': 'set', 'name': x.name, 'expr': self.gen_i64(c, 1)}]
        c.declare(Var(fname, SIG_II))
        c.spend(SIGCOST + 1)
        out.append({'op': 'expr', 'expr': {'op': 'msg_send', 'topic': 'cap', 'payload': {
            'op': 'call_ref', 'fn': {'op': 'var', 'name': fname}, 'args': [self.gen_i64(c, 1)]}}})
        return out

    def gen_if(self, c, d, depth):
        node = {'op': 'if', 'cond': self.cond(c, d)}
        c.scopes.append([])
        node['then'] = self.gen_stmts(c, self.r.randint(0, 3), d, depth + 1)
        self.maybe_terminal(c, node['then'], d)
        c.scopes.pop()
        if self.chance(0.5):
            c.scopes.append([])
            node['else'] = self.gen_stmts(c, self.r.randint(0, 3), d, depth + 1)
            self.maybe_terminal(c, node['else'], d, p=0.15)
            c.scopes.pop()
        elif self.chance(0.1):
            node['else'] = []
        return node

    def maybe_terminal(self, c, block, d, p=0.3):
        """Ends a branch with break, continue, return or trap now and then."""
        if not self.chance(p):
            return
        opts = [(3, 'return'), (0.5, 'trap')]
        if c.loop:
            opts += [(4, 'break'), (3, 'continue')]
        k = self.wpick(opts)
        if k == 'return':
            if c.ret is None:
                block.append({'op': 'return'})
            else:
                block.append({'op': 'return', 'expr': self.value(c, c.ret, d)})
        elif k == 'trap':
            block.append({'op': 'trap', 'message': self.pick(['boom', 'trap ü', 'x"y', 'stop\n'])})
        else:
            block.append({'op': k})

    def gen_stmts(self, c, n, d, depth):
        out = []
        for _ in range(n):
            sets = c.settable()
            k = self.wpick([(10, 'let'), (6 if sets else 0, 'set'), (5 if depth < 3 else 0, 'if'),
                            (3 if depth < 2 and c.afford(6) else 0, 'loop'), (7, 'effect'),
                            (0.25 if depth == 0 and c.mult == 1 and c.lambda_depth == 0 else 0, 'grow'),
                            (1.5, 'capture')])
            if k == 'let':
                out.append(self.gen_let(c, d))
            elif k == 'set':
                v = self.pick(sets)
                if v.t == JSON:
                    e, _ = self.gen_json(c, d)
                else:
                    e = self.value(c, v.t, d)
                out.append({'op': 'set', 'name': v.name, 'expr': e})
            elif k == 'if':
                out.append(self.gen_if(c, d, depth))
            elif k == 'loop':
                out += self.gen_loop(c, d, depth)
            elif k == 'grow':
                out += self.gen_grow(c, d)
            elif k == 'capture':
                out += self.gen_capture(c, d)
            else:
                out.append(self.gen_effect_stmt(c, d))
        if c.observe and c.afford(1) and self.chance(0.6):
            # make the block's values observable: most lets are read by
            # nothing else, and a wrong value nobody sees finds no bug
            own = c.scopes[-1] if depth else list(c.visible().values())
            vs = [v for v in own if not is_fn(v.t) and c.visible().get(v.name) is v]
            if vs:
                c.spend(1)
                t = JObj((v.name, {'op': 'var', 'name': v.name}) for v in vs)
                out.append({'op': 'expr', 'expr': {'op': 'msg_send', 'topic': 'vars',
                                                   'payload': {'op': 'json', 'value': t}}})
        return out

    def gen_body(self, c, n, d, final=True):
        body = self.gen_stmts(c, n, d, 0)
        if final and c.ret is not None:
            body.append({'op': 'return', 'expr': self.value(c, c.ret, d)})
        return body

    # ---- functions ----

    def add_function(self, name, params, body, parent=None):
        node = {'id': '', 'name': name, 'parent': parent,
                'params': [self.param_node(n, t) for n, t in params], 'body': body}
        if self.chance(0.2):
            del node['id']
        if parent is None and self.chance(0.2):
            del node['parent']
        self.functions.append(node)
        return node

    def rand_params(self, allow_fn=True, k=None):
        ps = []
        for _ in range(self.r.randint(0, 3) if k is None else k):
            t = self.wpick([(8, I64), (3, STR), (3, JSON), (3 if allow_fn else 0, SIG_II),
                            (1 if allow_fn else 0, SIG_III), (1 if allow_fn else 0, SIG_SS)])
            ps.append((self.fresh('q'), t))
        return ps

    def gen_helper(self):
        """A top-level function of random parameters and return type; it may
        call the helpers made before it (never itself: recursion is made on
        purpose elsewhere, where it is bounded)."""
        name = 'h%d' % len(self.helpers)
        if self.chance(0.35):
            # the signature of a function value, cheap enough to be one
            sig = self.pick(SIGS)
            params = [(self.fresh('q'), t) for t in sig[1]]
            ret, budget = sig[2], SIGCOST
        else:
            params = self.rand_params()
            ret = self.wpick([(8, I64), (4, STR), (4, JSON), (3, None), (2, SIG_II), (1, SIG_III), (1, SIG_SS)])
            budget = self.pick([SIGCOST, SIGCOST, 120, 300])
        c = FCtx(self, name, ret, [], list(self.helpers), budget)
        for pn, pt in params:
            c.declare(Var(pn, pt))
        body = self.use_fn_params(c, params)
        body += self.gen_body(c, self.r.randint(1, 5), 3)
        self.add_function(name, params, body)
        f = FInfo(name, params, ret)
        f.cost = c.cost + 1
        self.helpers.append(f)

    def combine(self, ret, e, use):
        """An expression of type ret (i64, str or json) that evaluates e, then use (of type ret)."""
        if ret == I64:
            return {'op': self.pick(['add', 'bxor', 'sub']), 'a': e, 'b': use}
        if ret == STR:
            return {'op': 'concat', 'parts': [e, use]}
        return {'op': 'json', 'value': JObj([('r', e), ('u', use)])}

    def use_fn_params(self, c, params):
        """Calls every fn parameter once, in a context that fixes its result
        type, so that its signature is inferred from its use."""
        out = []
        for pn, pt in params:
            if not is_fn(pt):
                continue
            c.spend(SIGCOST)
            use = {'op': 'call_ref', 'fn': {'op': 'var', 'name': pn},
                   'args': [self.value(c, t, 1) for t in pt[1]]}
            if pt[2] == I64:
                use, ut = {'op': 'add', 'a': use, 'b': self.lit(0)}, I64
            else:
                # (a function that nobody calls must still be typed by its own body)
                use, ut = {'op': 'ne', 'a': use, 'b': {'op': 'lit_str', 'value': self.pick(STR_POOL)}}, I64
            u = self.fresh('u')
            out.append({'op': 'let', 'name': u, 'expr': use})
            c.declare(Var(u, ut))
        return out

    def gen_rec(self):
        """rN(n, acc): recursion bounded by its first argument (callers mask it to 0..7)."""
        name = 'h%d' % len(self.helpers)
        f = FInfo(name, [('n', I64), ('acc', I64)], I64)
        c = FCtx(self, name, I64, [], list(self.helpers), 30)
        c.declare(Var('n', I64, settable=False))
        c.declare(Var('acc', I64))
        base = {'op': 'if', 'cond': {'op': 'le', 'a': {'op': 'var', 'name': 'n'}, 'b': self.lit(0)},
                'then': [{'op': 'return', 'expr': self.gen_i64(c, 2)}]}
        mid = self.gen_stmts(c, self.r.randint(0, 3), 2, 1)
        rec = {'op': 'call', 'fn': name,
               'args': [{'op': 'sub', 'a': {'op': 'var', 'name': 'n'}, 'b': self.lit(1)}, self.gen_i64(c, 2)]}
        if self.chance(0.5):
            tail = [{'op': 'return', 'expr': {'op': self.pick(['add', 'mul', 'bxor', 'sub']),
                                              'a': self.gen_i64(c, 1), 'b': rec}}]
        else:
            r = self.fresh('r')
            tail = [{'op': 'let', 'name': r, 'expr': rec}]
            c.declare(Var(r, I64))
            tail += self.gen_stmts(c, self.r.randint(0, 2), 1, 1)
            tail.append({'op': 'return', 'expr': {'op': 'add', 'a': {'op': 'var', 'name': r},
                                                  'b': self.gen_i64(c, 1)}})
        self.add_function(name, f.params, [base] + mid + tail)
        f.cost = 8 * (c.cost + 2)
        f.bounded = {0: 7}
        self.helpers.append(f)

    def gen_mutual(self):
        """Two functions calling each other, bounded by their argument (masked to 0..15)."""
        a, b = 'h%d' % len(self.helpers), 'h%d' % (len(self.helpers) + 1)
        fa, fb = FInfo(a, [('n', I64)], I64), FInfo(b, [('n', I64)], I64)
        costs = []
        for me, other in ((a, b), (b, a)):
            c = FCtx(self, me, I64, [], list(self.helpers), 12)
            c.declare(Var('n', I64, settable=False))
            base = {'op': 'if', 'cond': {'op': 'le', 'a': {'op': 'var', 'name': 'n'}, 'b': self.lit(0)},
                    'then': [{'op': 'return', 'expr': self.lit(self.r.randint(-3, 3))}]}
            mid = self.gen_stmts(c, self.r.randint(0, 2), 1, 2)
            call = {'op': 'call', 'fn': other,
                    'args': [{'op': 'sub', 'a': {'op': 'var', 'name': 'n'}, 'b': self.lit(1)}]}
            ret = {'op': 'return', 'expr': {'op': self.pick(['add', 'sub', 'bxor']), 'a': call,
                                            'b': self.gen_i64(c, 1)}}
            self.add_function(me, [('n', I64)], [base] + mid + [ret])
            costs.append(c.cost + 2)
        for f in (fa, fb):
            f.cost = 16 * max(costs)
            f.bounded = {0: 15}
            self.helpers.append(f)

    def gen_nested(self, parent, pctx_vars, callable_fns, level):
        """Functions nested in `parent`: they read its parameters and
        top-level variables (pctx_vars, nearest function first), call each
        other (earlier ones only, or themselves with a bounded depth) and
        may have nested functions of their own."""
        out = []
        for j in range(self.r.randint(1, 3) if level == 0 else self.r.randint(0, 1)):
            name = '%s_g%d' % (parent, j)
            if self.chance(0.35):
                # the signature of a function value: made into one with fn
                params, recursive, ret = [(self.fresh('q'), I64)], False, I64
            else:
                params = self.rand_params(allow_fn=self.chance(0.3), k=self.r.randint(0, 2))
                recursive = self.chance(0.3)
                if recursive:
                    params = [('d', I64)] + params
                ret = self.wpick([(6, I64), (3, STR), (3, JSON), (2, None)])
            f = FInfo(name, params, ret, parent)
            c = FCtx(self, name, ret, [v.readonly() for v in pctx_vars],
                     callable_fns + out, 60)
            c.observe = True
            for pn, pt in params:
                c.declare(Var(pn, pt, settable=not (recursive and pn == 'd')))
            body = self.use_fn_params(c, params)
            if recursive:
                base = [{'op': 'return', 'expr': self.value(c, ret, 1)}] if ret else [{'op': 'return'}]
                body.append({'op': 'if', 'cond': {'op': 'le', 'a': {'op': 'var', 'name': 'd'}, 'b': self.lit(0)},
                             'then': base})
            # its own top-level variables (which its own nested functions may read)
            for _ in range(self.r.randint(0, 2)):
                body.append(self.gen_let(c, 1))
            if level == 0 and self.chance(0.3):
                own = [v for v in c.scopes[0]] + list(c.captured)
                body_nested = self.gen_nested(name, own, c.callable, level + 1)
                c.callable = c.callable + body_nested
                c.fresh_top = True
            body += self.gen_stmts(c, self.r.randint(0, 3), 2, 0)
            if recursive:
                args = [{'op': 'sub', 'a': {'op': 'var', 'name': 'd'}, 'b': self.lit(1)}] + \
                       [self.value(c, pt, 1) for _, pt in params[1:]]
                call = {'op': 'call', 'fn': name, 'args': args}
                if ret is None:
                    body.append({'op': 'expr', 'expr': call})
                else:
                    body.append({'op': 'return', 'expr': self.combine(ret, self.value(c, ret, 1), call)
                                 if ret != I64 else {'op': 'add', 'a': call, 'b': self.gen_i64(c, 1)}})
            elif ret is not None:
                e = self.value(c, ret, 2)
                vis = c.visible()
                caps = [v for v in c.captured if v.t == I64 and vis.get(v.name) is v]
                if ret == I64 and caps:
                    # the result depends on a captured value (read when called)
                    e = {'op': 'add', 'a': e, 'b': {'op': 'var', 'name': self.pick(caps).name}}
                body.append({'op': 'return', 'expr': e})
            self.add_function(name, params, body, parent=parent)
            f.cost = (c.cost + 2) * (4 if recursive else 1)
            if recursive:
                f.bounded = {0: 3}
            out.append(f)
        return out

    def gen_test(self, k):
        """A test function: invoked by the driver, never called."""
        name = 't%d' % k
        params = []
        args = JObj()
        arg_shapes = []
        for _ in range(self.r.randint(0, 3)):
            t = self.wpick([(4, I64), (2, STR), (3, JSON)])
            pn = self.fresh('a')
            if t == I64:
                v, s = RawNum(str(self.rand_i64())), ('int',)
            elif t == STR:
                v, s = self.pick(STR_POOL), ('str',)
            else:
                v, s = self.rand_json(3)
            params.append((pn, t, s))
            args.append((pn, v))
            arg_shapes.append((pn, s))
        by_position = params and self.chance(0.3)
        inp = JObj([('fn', name)])
        if params or self.chance(0.5):
            inp.append(('args', [v for _, v in args] if by_position else args))
        self.input_shape = ('obj', [('fn', ('str',))] + (
            [('args', ('arr', [s for _, s in arg_shapes]) if by_position else ('obj', arg_shapes))]
            if inp.has('args') else []))
        ret = self.wpick([(6, I64), (4, STR), (5, JSON), (2, None)])
        c = FCtx(self, name, ret, [], list(self.helpers), 2500)
        c.observe = True
        for pn, pt, s in params:
            c.declare(Var(pn, pt, s if self.chance(0.7) else None, settable=pt != JSON))
        # the prelude: top-level variables the nested functions may read
        body = [self.gen_let(c, 2) for _ in range(self.r.randint(0, 3))]
        nested = []
        if self.chance(0.45):
            nested = self.gen_nested(name, list(c.scopes[0]), list(self.helpers), 0)
            c.callable = c.callable + nested
            c.fresh_top = True
        body += self.gen_stmts(c, self.r.randint(2, 7), 3, 0)
        partial = ret is not None and self.chance(0.15)
        if ret is not None and not partial:
            body.append({'op': 'return', 'expr': self.value(c, ret, 3)})
        # nested functions come after their parent in the file, now and then before
        node = self.add_function(name, [(pn, pt) for pn, pt, _ in params], body)
        if nested and self.chance(0.3):
            self.functions.remove(node)
            at = next(i for i, f in enumerate(self.functions) if f['name'] == nested[0].name)
            self.functions.insert(at, node) if self.chance(0.5) else self.functions.insert(at + len(nested), node)
        input_text = dumps(inp)
        if params and self.chance(0.15):
            # an input that does not fit: a missing or mistyped argument traps before the body runs
            bad = JObj(args)
            i = self.r.randrange(len(bad))
            pn, v = bad[i]
            pt = params[i][1]
            if pt == JSON or self.chance(0.4):
                del bad[i]
            elif pt == I64:
                bad[i] = (pn, self.pick(['7', RawNum('1.5'), RawNum(str(1 << 63)), None, [1]]))
            else:
                bad[i] = (pn, self.pick([RawNum('5'), None, JObj()]))
            binp = JObj([('fn', name), ('args', [x for _, x in bad] if by_position else bad)])
            self.invocations.append({'fn': name, 'input': dumps(binp),
                                     'ctx': [[kk, self.rand_i64()] for kk in CTX_GIVEN]})
        for variant in range(self.r.randint(1, 2)):
            ctx = [(key, self.rand_i64()) for key in CTX_GIVEN]
            if variant and self.chance(0.5):
                ctx = [kv for kv in ctx if kv[0] != 'b']  # a run where 'b' is missing
            self.invocations.append({'fn': name, 'input': input_text,
                                     'ctx': [[kk, vv] for kk, vv in ctx]})

    def generate(self, n_helpers, n_tests):
        self.input_shape = None
        for _ in range(n_helpers):
            k = self.r.random()
            if k < 0.12:
                self.gen_rec()
            elif k < 0.18:
                self.gen_mutual()
            else:
                self.gen_helper()
        for k in range(n_tests):
            self.gen_test(k)
        prog = {'version': 1, 'functions': self.functions}
        return prog, self.invocations


def generate(seed, n_helpers=None, n_tests=None, exclude=()):
    """(program, invocations) for a seed; the program is a JSON-able tree
    (RawNum and JObj where number text and key order matter)."""
    g = Gen(seed, exclude)
    r = random.Random(seed * 7919 + 1)
    nh = n_helpers if n_helpers is not None else r.randint(6, 14)
    nt = n_tests if n_tests is not None else r.randint(14, 22)
    return g.generate(nh, nt)


def main(argv):
    import argparse
    ap = argparse.ArgumentParser(description='generate one random wfp IR program')
    ap.add_argument('seed', type=int)
    ap.add_argument('-o', '--output', default=None)
    a = ap.parse_args(argv)
    prog, invs = generate(a.seed)
    text = dumps(prog)
    if a.output:
        with open(a.output, 'w', encoding='utf-8') as f:
            f.write(text + '\n')
    else:
        print(text)
    print(json.dumps(invs, ensure_ascii=False), file=sys.stderr if not a.output else sys.stdout)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
