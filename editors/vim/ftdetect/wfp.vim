" wfp text programs (docs/language.md)
autocmd BufRead,BufNewFile *.wfp setfiletype wfp
