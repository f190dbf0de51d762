#!/usr/bin/env python3
# limits_gen.py: the programs of limits.sh (and of docs/check_docs.py, which
# quotes their refusals): a valid program of SHAPE whose size is N, the
# size a limit of docs/ir.md ("Limits") counts.
# Usage: limits_gen.py SHAPE N FILE
import json, sys
shape, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
lit = {"op": "lit_i64", "value": 1}
if shape == "functions":
    fs = [{"name": "main", "params": [], "body": [{"op": "return", "expr": lit}]}]
    fs += [{"name": "f%d" % i, "params": [], "body": [{"op": "return", "expr": lit}]}
           for i in range(n - 1)]
elif shape == "parts":
    fs = [{"name": "main", "params": [], "body": [{"op": "return", "expr":
           {"op": "concat", "parts": [{"op": "lit_str", "value": "a"}] * n}}]}]
elif shape == "holes":
    fs = [{"name": "main", "params": [], "body": [{"op": "return", "expr":
           {"op": "json", "value": [lit] * n}}]}]
elif shape == "params":
    fs = [{"name": "main", "params": [], "body": [{"op": "return", "expr": lit}]},
          {"name": "wide", "params": ["p%d" % i for i in range(n)], "body": [
              {"op": "return", "expr": {"op": "var", "name": "p0"}}]}]
elif shape == "captures":
    # n - 2 parameters of its own and 2 captured variables
    fs = [{"name": "main", "params": ["a", "b"], "body": [{"op": "return", "expr": lit}]},
          {"name": "inner", "parent": "main", "params": ["p%d" % i for i in range(n - 2)],
           "body": [{"op": "return", "expr": {"op": "add", "a": {"op": "var", "name": "a"},
                                              "b": {"op": "var", "name": "b"}}}]}]
elif shape == "nesting":
    # n functions nested in main, one in the other
    fs = [{"name": "main", "params": [], "body": [{"op": "return", "expr": lit}]}]
    fs += [{"name": "n%d" % k, "parent": "main" if k == 1 else "n%d" % (k - 1),
            "params": [], "body": [{"op": "return", "expr": lit}]} for k in range(1, n + 1)]
elif shape == "sites":
    fs = [{"name": "main", "params": [], "body": [
        {"op": "expr", "expr": {"op": "sleep_ms", "ms": lit}}] * n + [{"op": "return", "expr": lit}]}]
else:
    # while loops nested n deep
    body = [{"op": "break"}]
    for k in range(n):
        body = [{"op": "while", "cond": lit, "body": body}]
    fs = [{"name": "main", "params": [], "body": body + [{"op": "return", "expr": lit}]}]
json.dump({"version": 1, "functions": fs}, open(out, "w"))
