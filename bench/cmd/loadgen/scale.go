package main

import "io"

func scaleMain(args []string, w io.Writer) int { return 2 }
