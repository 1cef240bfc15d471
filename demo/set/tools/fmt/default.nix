{ }: builtins.toFile "fmt" "fmt 1.0.0"
