" Vim syntax file
" Language:    wfp text syntax (.wfp), docs/language.md
" Install:     copy editors/vim/ into ~/.vim/ (or add it to 'runtimepath')

if exists("b:current_syntax")
  finish
endif

syn keyword wfpKeyword      let return trap break continue
syn keyword wfpConditional  if else
syn keyword wfpRepeat       while
syn keyword wfpDecl         fn nextgroup=wfpFuncName skipwhite
syn match   wfpFuncName     "#\?[A-Za-z_$][A-Za-z0-9_$]*\(\.[A-Za-z_$][A-Za-z0-9_$]*\)\?" contained
syn match   wfpTop          "^\s*\(resource\|entry\)\>"
syn match   wfpTop          "^\s*methods\>\ze\s*[^:]"
syn match   wfpIn           ")\s*\zsin\ze\s\+[A-Za-z_$#]"
syn match   wfpWith         "\<fn\s\+#\?[A-Za-z_$][A-Za-z0-9_$]*\s\+\zswith\>"
syn keyword wfpType         i64 str
syn keyword wfpJson         json
syn keyword wfpBoolean      true false null
syn match   wfpEffect       "\<\(ctx\.get\|ctx\.set\|msg\.send\|db\.query\)\>"
syn match   wfpSelf         "\<self\.\ze[A-Za-z_$]"
syn match   wfpBuiltin      "\<\(len\|input\|sleep\|get_i64\|get_str\|get_json\)\ze\s*("
syn match   wfpAttribute    "@\(id\|nested_in\|captures\)\>"
syn match   wfpRawName      "#[A-Za-z0-9_$-]\+"
syn match   wfpNumber       "-\?\<\d\+\(\.\d\+\)\?\([eE][+-]\?\d\+\)\?\>"
syn match   wfpEscape       contained "\\\([\"'\\/bfnrt`$]\|u\x\{4}\)"
syn region  wfpString       start=+"+ skip=+\\\\\|\\"+ end=+"+ oneline contains=wfpEscape
syn region  wfpString       start=+'+ skip=+\\\\\|\\'+ end=+'+ oneline contains=wfpEscape
syn region  wfpTemplate     start=+`+ skip=+\\\\\|\\`+ end=+`+ contains=wfpEscape,wfpInterp
syn region  wfpInterp       matchgroup=wfpInterpDelim start=+\${+ end=+}+ contained contains=TOP
syn match   wfpOperator     "||\|&&\|==\|!=\|<=\|>=\|<<\|>>\|\.(\|[-+*/%&|^!<>=]"
syn keyword wfpTodo         contained NOTE
syn region  wfpComment      start="//" end="$" contains=wfpTodo,@Spell
syn region  wfpComment      start="/\*" end="\*/" contains=wfpTodo,@Spell

hi def link wfpKeyword      Keyword
hi def link wfpConditional  Conditional
hi def link wfpRepeat       Repeat
hi def link wfpDecl         Keyword
hi def link wfpFuncName     Function
hi def link wfpTop          Structure
hi def link wfpIn           Keyword
hi def link wfpWith         Keyword
hi def link wfpType         Type
hi def link wfpJson         Type
hi def link wfpBoolean      Boolean
hi def link wfpEffect       Special
hi def link wfpSelf         Special
hi def link wfpBuiltin      Function
hi def link wfpAttribute    PreProc
hi def link wfpRawName      Identifier
hi def link wfpNumber       Number
hi def link wfpEscape       SpecialChar
hi def link wfpString       String
hi def link wfpTemplate     String
hi def link wfpInterpDelim  Delimiter
hi def link wfpOperator     Operator
hi def link wfpTodo         Todo
hi def link wfpComment      Comment

let b:current_syntax = "wfp"
